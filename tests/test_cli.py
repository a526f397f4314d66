"""The command line as a user runs it: output, exit codes, error messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reclaim.cli import app
from tests.conftest import EVENTS
from tests.support.dynalite import Dynalite

runner = CliRunner()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed console script, as a user would."""
    exe = Path(sys.executable).with_name("reclaim")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120)


def test_invoke_prints_one_json_array_of_commands() -> None:
    out = run(
        "invoke",
        str(EVENTS / "nova/instance.power_off.end.json"),
        str(EVENTS / "allocation/allocation.ended.v1.json"),
    )
    assert out.returncode == 0, out.stderr
    cmds = json.loads(out.stdout)
    shelve = [c for c in cmds if c["action"] == "shelve" and c["op"] == "schedule"]
    assert shelve == [{**shelve[0], "resource_type": "server", "due_at": "2026-03-15T09:30:00Z"}]
    notify = [c for c in cmds if c["action"] == "notify"]
    assert {c["notice"] for c in notify} == {
        "shelve_upcoming",
        "allocation_ended",
        "cleanup_upcoming",
    }
    assert all(c["due_at"].endswith("Z") for c in cmds if c["op"] == "schedule")
    assert {"cleanup", "scan_dependents"} <= {c["action"] for c in cmds}
    assert {c["op"] for c in cmds} == {"schedule", "cancel"}


def test_invoke_unknown_event_type_prints_empty_array(tmp_path: Path) -> None:
    f = tmp_path / "heat.json"
    f.write_text(json.dumps({"message_id": "1", "publisher_id": "orchestration", "event_type": "orchestration.stack.create.end",
                             "priority": "INFO", "timestamp": "2026-01-01 00:00:00.000000", "payload": {}}))  # fmt: skip
    out = run("invoke", str(f))
    assert (out.returncode, json.loads(out.stdout)) == (0, [])


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{broken", "not JSON"),
        ('{"oslo.message": "{}"}', "envelope: missing"),
        (b"\xff", "not UTF-8"),
    ],
)
def test_invoke_malformed_file_exits_2_with_one_line(
    tmp_path: Path, content: str | bytes, problem: str
) -> None:
    f = tmp_path / "bad.json"
    f.write_bytes(content if isinstance(content, bytes) else content.encode())
    out = run("invoke", str(f))
    assert out.returncode == 2
    assert out.stdout == ""
    [line] = out.stderr.strip().splitlines()
    assert str(f) in line and problem in line and "Traceback" not in out.stderr


def test_invoke_missing_file(tmp_path: Path) -> None:
    out = run("invoke", str(tmp_path / "nope.json"))
    assert out.returncode == 2 and "nope.json" in out.stderr and "Traceback" not in out.stderr


def test_replay_json_lists_pending_timers_after_the_stream() -> None:
    files = [
        EVENTS / "nova/instance.shelve.end.json",
        EVENTS / "nova/instance.shelve_offload.end.v1.json",
    ]
    result = runner.invoke(app, ["replay", "--json", *map(str, files)])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    [delete] = [r for r in rows if r["action"] == "delete"]
    assert delete["resource_type"] == "server" and delete["due_at"] == "2026-08-28T09:30:00Z"
    assert sorted(r["notice"] for r in rows if r["action"] == "notify") == ["delete_upcoming"] * 3


def test_replay_then_timers_list_on_a_real_dynalite(dynalite: Dynalite) -> None:
    url = f"{dynalite.url}/cli-replay"
    stream = EVENTS / "streams" / "demo.json"
    assert runner.invoke(app, ["replay", "--store", url, str(stream)]).exit_code == 0
    listed = runner.invoke(
        app, ["timers", "list", "--store", url, "--json", "--due-before", "2026-03-15T12:00:00Z"]
    )
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert rows and all(r["due_at"] <= "2026-03-15T12:00:00Z" for r in rows)
    assert any(r["action"] == "shelve" for r in rows)
    assert not any(r["resource_id"].startswith("7a5c9e1f") for r in rows)  # the exempt server
    assert not any(r["resource_id"].startswith("6f4b8d0e") for r in rows)  # restarted in time


@pytest.mark.parametrize(
    "command",
    [["timers", "list"], ["sweep", "--dry-run"], ["plan"], ["breaker", "status"],
     ["audit", "server", "x"], ["deadletters", "list"]],
)  # fmt: skip
def test_a_command_that_only_reads_refuses_a_missing_table_and_creates_none(
    dynalite: Dynalite, command: list[str]
) -> None:
    """A mistyped table name must not read as a store with nothing due (and leave a table)."""
    import boto3

    url = f"{dynalite.url}/no-such-table"
    result = runner.invoke(app, [*command, "--store", url])
    assert result.exit_code == 2, result.output
    assert "no table 'no-such-table'" in result.output and "Traceback" not in result.output
    client = boto3.client(
        "dynamodb", endpoint_url=dynalite.url, region_name="us-east-1",
        aws_access_key_id="x", aws_secret_access_key="x",
    )  # fmt: skip
    assert "no-such-table" not in client.list_tables()["TableNames"]


def test_timers_list_rejects_a_bad_time() -> None:
    result = runner.invoke(app, ["timers", "list", "--due-before", "someday"])
    assert result.exit_code == 2 and "--due-before" in result.output


def test_allocation_events_need_a_project_id_not_a_name() -> None:
    """A name would make timers for a project that does not exist (and warn none of the
    real one's users); refused before anything is published."""
    result = runner.invoke(app, ["allocation", "end", "genomics", "--transport-url", "fake://"])
    assert result.exit_code == 2
    assert "'genomics' is not a Keystone project id" in result.output
    assert "openstack project show genomics -f value -c id" in result.output
