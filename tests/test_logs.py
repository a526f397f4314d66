"""listen and run log one JSON line schema (ts, level, event, then fields; counts as
integers), as the mailer does (tests/notices/test_mailer.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.logs import log_records
from tests.support.processes import lines_until, sigterm_exit_code
from tests.test_daemon import BUS, reclaim_run

pytestmark = pytest.mark.rabbitmq


@pytest.mark.timeout(900)
def test_run_logs_one_json_schema_with_integer_counts(tmp_path: Path) -> None:
    with reclaim_run(tmp_path, BUS, RECLAIM_RUN__SWEEP_EVERY="0.5s") as proc:
        lines = lines_until(proc, '"swept"', timeout=400)
        assert sigterm_exit_code(proc, within=240) == 0
        lines += (proc.stderr.read() if proc.stderr else "").splitlines(keepends=True)
    records = {r["event"]: r for r in log_records(lines)}
    assert {"listening", "swept", "signal", "stopped"} <= set(records)
    assert isinstance(records["stopped"]["applied"], int)
    assert all(isinstance(v, int) for v in records["swept"]["counts"].values())


def test_listen_logs_one_json_schema(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "RECLAIM_STORE_URL": "memory://listen",
        "RECLAIM_BUS__TRANSPORT_URL": BUS,
        "RECLAIM_BUS__METRICS_PORT": "0",
    }
    exe = Path(sys.executable).with_name("reclaim")
    proc = subprocess.Popen([str(exe), "listen"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        lines = lines_until(proc, '"listening"', timeout=120)
        assert sigterm_exit_code(proc, within=60) == 0
        lines += (proc.stderr.read() if proc.stderr else "").splitlines(keepends=True)
    finally:
        proc.kill()
        proc.wait()
    records = {r["event"]: r for r in log_records(lines)}
    assert {"listening", "signal", "stopped"} <= set(records)
    assert records["stopped"]["applied"] == 0
