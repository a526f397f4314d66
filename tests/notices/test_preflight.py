"""``reclaim mailer`` says at start, loudly, when it has nobody to send alerts and
unresolvable notices to."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from reclaim_sim import SimServer
from tests.support.dynalite import free_port
from tests.support.processes import lines_until

ROOT = Path(__file__).resolve().parents[2]


def start_mailer(**env: str) -> subprocess.Popen[str]:
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RECLAIM_")},
        "RECLAIM_STORE_URL": "memory://mailer-preflight",
        # a broker nobody listens on: the mailer waits for it, which is all this test needs
        "RECLAIM_MAILER__TRANSPORT_URL": f"rabbit://guest:guest@127.0.0.1:{free_port()}/",
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "reclaim.mailer"], env=environ, cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_the_mailer_warns_at_start_without_operators_or_fallback_contact() -> None:
    proc = start_mailer()
    try:
        lines = lines_until(proc, "no operator address and no fallback contact", timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert any("WARNING: reclaim mailer: notices may reach nobody" in line for line in lines)


def test_the_mailer_does_not_warn_with_an_operator_address(
    keystone: SimServer, tmp_path: Path
) -> None:
    clouds = keystone.write_clouds_yaml(tmp_path / "clouds.yaml")
    proc = start_mailer(
        RECLAIM_MAILER__OPERATORS='["ops@example.org"]',
        OS_CLIENT_CONFIG_FILE=str(clouds),
        OS_CLOUD="sim-admin",
    )
    try:
        lines = lines_until(proc, "broker_unreachable", timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert not any("WARNING" in line for line in lines), lines
