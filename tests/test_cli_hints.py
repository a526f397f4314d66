"""Error messages that name the fix: the setting, the flag, the nearest valid key."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reclaim.cli import app
from reclaim.settings import nearest_setting

runner = CliRunner()


def errors(output: str) -> list[str]:
    """The error lines (sweep and run may warn first that notices reach nobody)."""
    return [line for line in output.splitlines() if line.startswith("reclaim: error:")]


def no_cloud(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("OS_"):
            monkeypatch.delenv(name)
    (tmp_path / "clouds.yaml").write_text("clouds: {}\n")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(tmp_path / "clouds.yaml"))


@pytest.mark.parametrize(
    ("command", "setting"),
    [
        (["sweep", "--dry-run"], "sweep.cloud"),
        (["reconcile", "--dry-run"], None),
        (["mailer"], "mailer.cloud"),
    ],
)
def test_a_command_without_a_cloud_says_how_to_name_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: list[str], setting: str | None
) -> None:
    no_cloud(monkeypatch, tmp_path)
    out = runner.invoke(app, [*command, "--store", "memory://hints"])
    assert out.exit_code == 2, out.output
    [line] = errors(out.output)
    assert "set OS_CLOUD to a clouds.yaml entry, give --cloud" in line
    assert (setting or "OS_CLOUD") in line and "auth_url" in line  # openstacksdk's own words


def test_a_named_cloud_that_is_missing_is_named() -> None:
    out = runner.invoke(app, ["sweep", "--cloud", "nowhere", "--store", "memory://hints"])
    assert out.exit_code == 2
    assert [line.split(":", 3)[2] for line in errors(out.output)] == [" cloud 'nowhere'"]


def test_a_taken_metrics_port_names_the_setting_and_the_flag() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        exe = Path(sys.executable).with_name("reclaim")
        out = subprocess.run(
            [str(exe), "listen", "--transport-url", "kombu+memory:////", "--store",
             "memory://hints", "--metrics-port", str(port)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert out.returncode == 1, out.stderr
    [line] = errors(out.stderr)
    assert f"metrics port 127.0.0.1:{port}: Address already in use" in line
    assert "bus.metrics_port (RECLAIM_BUS__METRICS_PORT, --metrics-port)" in line


def test_a_mistyped_key_in_the_config_file_names_the_nearest_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "reclaim.yaml"
    config.write_text("policy:\n  shelve_aftr: 10d\nsweep:\n  dry_rn: true\n")
    monkeypatch.setenv("RECLAIM_CONFIG", str(config))
    out = runner.invoke(app, ["timers", "list"])
    assert out.exit_code == 2
    assert "policy.shelve_aftr: no such setting (got '10d'), did you mean policy.shelve_after?" in (
        out.output
    )
    assert "sweep.dry_rn: no such setting (got True), did you mean sweep.dry_run?" in out.output


@pytest.mark.parametrize(
    ("name", "nearest"),
    [
        ("RECLAIM_POLICY__SHELVE_AFTR", "policy.shelve_after"),
        ("RECLAIM_POLCY__SHELVE_AFTER", "RECLAIM_POLICY__SHELVE_AFTER"),
        ("RECLAIM_POLICY_SHELVE_AFTER", "RECLAIM_POLICY__SHELVE_AFTER"),
        ("RECLAIM_STORE_UR", "RECLAIM_STORE_URL"),
    ],
)
def test_a_mistyped_variable_names_the_nearest_one(
    monkeypatch: pytest.MonkeyPatch, name: str, nearest: str
) -> None:
    monkeypatch.setenv(name, "30d")
    out = runner.invoke(app, ["timers", "list"])
    assert out.exit_code == 2 and f"did you mean {nearest}?" in out.output


def test_nothing_close_suggests_nothing() -> None:
    assert nearest_setting(["policy", "zzzzzz"]) is None
    assert nearest_setting(["RECLAIM_XYZZY"]) is None
