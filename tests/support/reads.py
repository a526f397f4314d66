"""The read commands an operator runs after ingestion, run as a user runs them."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from reclaim.cli import app
from reclaim_sim import SimServer

#: What an operator reads after events came in: every one must work whatever was stored.
READ_COMMANDS = (
    ("timers", "list"),
    ("plan",),
    ("sweep", "--dry-run"),
    ("reconcile", "--dry-run"),
)


def point_at_sim(sim_server: SimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point openstacksdk (sweep, reconcile) at the simulated cloud's admin entry."""
    clouds = sim_server.write_clouds_yaml(tmp_path / "clouds.yaml")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    monkeypatch.setenv("OS_CLOUD", "sim-admin")
    monkeypatch.setenv("RECLAIM_BUS__TRANSPORT_URL", "kombu+memory:////")


def read_commands(store_url: str, now: str) -> dict[str, str]:
    """Run every read command on ``store_url`` at ``now``; fail on a non-zero exit or an
    exception. Returns each command's standard output by name."""
    runner = CliRunner()
    outputs: dict[str, str] = {}
    for command in READ_COMMANDS:
        timed = ("--now", now) if command[0] in ("plan", "sweep", "reconcile") else ()
        result = runner.invoke(app, [*command, "--store", store_url, *timed])
        name = " ".join(command)
        assert result.exit_code == 0, (name, result.output, result.exception)
        assert result.exception is None, (name, result.exception)
        assert "Traceback" not in result.stdout, (name, result.stdout)
        outputs[name] = result.stdout
    return outputs
