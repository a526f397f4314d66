"""A stored item that does not decode stops no sweep: the others are carried out, operators
are alerted once, and the sweep's report and the read commands count it."""

from __future__ import annotations

import json
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from reclaim.cli import core as core_cli
from reclaim.cli import sweep as sweep_cli
from reclaim.sweeper import OpenStackCloud, RecordingNotices
from tests.support.poison import poison
from tests.sweeper.conftest import NOW, World, make_sweeper

app = typer.Typer()
sweep_cli.register(app)
core_cli.register(app)
runner = CliRunner()


def test_a_sweep_acts_on_the_rest_and_alerts_once(world: World, cloud_port: OpenStackCloud) -> None:
    sid = world.server()
    world.timer(sid)
    key = poison(world.store, "bad-1")
    notices = RecordingNotices()

    report = make_sweeper(world, cloud_port, notices).sweep(NOW)
    assert report.counts()["done"] == 1 and world.shelves(sid) == 1
    assert report.unreadable == [key]
    [alert] = [m for m in notices.messages if m.kind == "store_item_unreadable"]
    assert alert.operator and alert.detail["key"] == key and alert.detail["reason"]

    again = make_sweeper(world, cloud_port, notices, owner="sweeper-b").sweep(NOW)
    assert again.unreadable == [key]
    assert notices.kinds().count("store_item_unreadable") == 1  # once, not every sweep


def test_a_dry_run_counts_but_neither_alerts_nor_marks(
    world: World, cloud_port: OpenStackCloud
) -> None:
    key = poison(world.store, "bad-1")
    notices = RecordingNotices()
    report = make_sweeper(world, cloud_port, notices).sweep(NOW, dry_run=True)
    assert report.unreadable == [key] and notices.messages == []
    real = make_sweeper(world, cloud_port, notices).sweep(NOW)
    assert real.unreadable == [key] and notices.kinds() == ["store_item_unreadable"]


def test_an_alert_the_bus_refuses_goes_out_on_the_next_sweep(
    world: World, cloud_port: OpenStackCloud
) -> None:
    poison(world.store, "bad-1")

    class Refusing(RecordingNotices):
        def publish(self, message: Any) -> None:
            raise ConnectionError("broker down")

    failed = make_sweeper(world, cloud_port, Refusing()).sweep(NOW)
    assert failed.notices_failed == 1
    notices = RecordingNotices()
    make_sweeper(world, cloud_port, notices).sweep(NOW)
    assert notices.kinds() == ["store_item_unreadable"]


@pytest.fixture
def env(cli_store: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("RECLAIM_SWEEP__MIN_NOTICE_LEAD", "0s")
    return cli_store


def test_every_read_command_works_and_says_how_many_were_skipped(world: World, env: str) -> None:
    sid = world.server()
    world.timer(sid)
    poison(world.store, "bad-1")
    poison(world.store, "bad-2", "garbage")
    now = ["--now", NOW.isoformat()]
    footer = "2 stored item(s) unreadable, skipped: server#bad-1, server#bad-2"
    for args in (["timers", "list"], ["plan", *now], ["sweep", "--dry-run", *now]):
        out = runner.invoke(app, [*args, "--store", env])
        assert out.exit_code == 0, out.output
        assert sid[:8] in out.stdout and footer in out.stdout, out.stdout

    as_json = runner.invoke(app, ["timers", "list", "--store", env, "--json"])
    assert as_json.exit_code == 0 and [r["resource_id"] for r in json.loads(as_json.stdout)]
    assert footer in as_json.stderr

    swept = runner.invoke(app, ["sweep", "--store", env, *now, "--json"])
    assert swept.exit_code == 0, swept.output
    report = json.loads(swept.stdout)
    assert report["unreadable"] == ["server#bad-1", "server#bad-2"]
    assert report["counts"] == {"done": 1}

    audit = runner.invoke(app, ["audit", "server", "bad-1", "--store", env])
    assert audit.exit_code == 1
    assert "server#bad-1: stored item unreadable" in audit.stderr
    assert "reclaim store quarantine show server#bad-1" in audit.stderr
