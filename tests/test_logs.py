"""listen, run, mailer and sweep log one JSON line schema (ts, level, event, then fields,
then logger; counts as integers): each command's logging path, run as a process whose
stderr is no terminal."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reclaim_sim import Cloud, SimClock, SimServer
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
    assert {"listening", "reconciled", "swept", "signal", "stopped"} <= set(records)
    assert isinstance(records["stopped"]["applied"], int)
    assert all(isinstance(v, int) for v in records["swept"]["counts"].values())
    reconciled = records["reconciled"]
    assert isinstance(reconciled["drift"], int) and isinstance(reconciled["by_rule"], dict)


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
        # read the rest as it comes: a listener whose stderr pipe filled up (nobody reading)
        # would block on its next log line and never stop
        rest: list[str] = []
        reader = threading.Thread(target=lambda: rest.extend(proc.stderr or ()), daemon=True)
        reader.start()
        try:
            code = sigterm_exit_code(proc, within=60)
        except (AssertionError, subprocess.TimeoutExpired) as exc:
            log = "".join(lines + rest)
            raise AssertionError(f"listen did not stop: {exc}; its log:\n{log}") from exc
        assert code == 0
        reader.join(timeout=30)
        lines += rest
    finally:
        proc.kill()
        proc.wait()
    records = {r["event"]: r for r in log_records(lines)}
    assert {"listening", "signal", "stopped"} <= set(records)
    assert records["stopped"]["applied"] == 0


@pytest.fixture
def cloud_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a command acting on a simulated cloud (OS_CLOUD), with an
    embedded store and an in-memory bus."""
    cloud = Cloud(clock=SimClock(datetime(2026, 3, 1, tzinfo=UTC)))
    with SimServer(cloud) as sim:
        yield {
            **os.environ,
            "OS_CLIENT_CONFIG_FILE": str(sim.write_clouds_yaml(tmp_path / "clouds.yaml")),
            "OS_CLOUD": "sim-admin",
            "RECLAIM_STORE_URL": "memory://logs",
            "RECLAIM_BUS__TRANSPORT_URL": BUS,
            "RECLAIM_MAILER__TRANSPORT_URL": BUS,
            "RECLAIM_BUS__METRICS_PORT": "0",
        }
    cloud.close()


def test_sweep_logs_one_json_schema(cloud_env: dict[str, str]) -> None:
    """A standalone sweep's lines (here the warning that notices reach nobody) carry ts
    and level too."""
    exe = Path(sys.executable).with_name("reclaim")
    out = subprocess.run(
        [str(exe), "sweep", "--dry-run", "--now", "2026-03-01T00:00:00Z"],
        env=cloud_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    records = log_records(out.stderr.splitlines())
    assert [r["event"] for r in records] == ["delivery_unconfigured"], out.stderr
    assert records[0]["level"] == "warning" and records[0]["command"] == "sweep"


def test_mailer_logs_one_json_schema(cloud_env: dict[str, str]) -> None:
    exe = Path(sys.executable).with_name("reclaim")
    proc = subprocess.Popen([str(exe), "mailer"], env=cloud_env, stderr=subprocess.PIPE, text=True)
    try:
        lines = lines_until(proc, '"mailer_listening"', timeout=120)
        assert sigterm_exit_code(proc, within=60) == 0
        lines += (proc.stderr.read() if proc.stderr else "").splitlines(keepends=True)
    finally:
        proc.kill()
        proc.wait()
    records = {r["event"]: r for r in log_records(lines)}
    assert {"delivery_unconfigured", "mailer_listening", "signal", "mailer_stopped"} <= set(records)
