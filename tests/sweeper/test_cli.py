"""``reclaim sweep``, ``plan``, ``audit``, ``breaker`` as a user runs them."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from reclaim.cli import sweep as sweep_cli
from tests.sweeper.conftest import NOW, World

app = typer.Typer()
sweep_cli.register(app)
runner = CliRunner()


@pytest.fixture
def env(cli_store: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("RECLAIM_SWEEP__MIN_NOTICE_LEAD", "0s")
    return cli_store


def test_sweep_dry_run_then_for_real_then_audit(world: World, env: str) -> None:
    sid = world.server()
    world.timer(sid)
    now = NOW.isoformat()

    dry = runner.invoke(app, ["sweep", "--store", env, "--now", now, "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    out = json.loads(dry.stdout)
    assert out["dry_run"] and out["counts"] == {"would-act": 1}
    assert world.mutations() == []

    real = runner.invoke(app, ["sweep", "--store", env, "--now", now])
    assert real.exit_code == 0, real.output
    assert "done 1; notices 1, alerts 0" in real.stdout and sid[:8] in real.stdout
    assert world.shelves(sid) == 1

    history = runner.invoke(app, ["audit", "server", sid, "--store", env, "--json"])
    assert history.exit_code == 0, history.output
    rows = json.loads(history.stdout)["history"]
    assert [(r["what"], r["outcome"]) for r in rows][-1] == ("shelve", "done")
    assert rows[-1]["request_ids"].startswith("req-")


def test_plan_forecasts_notices_and_actions(world: World, env: str) -> None:
    sid = world.server()
    world.timer(sid, since=NOW)
    result = runner.invoke(
        app, ["plan", "--store", env, "--now", NOW.isoformat(), "--within", "30d", "--json"]
    )
    assert result.exit_code == 0, result.output
    rows = [r for r in json.loads(result.stdout) if r["resource_id"] == sid]
    assert [r["what"] for r in rows] == [
        "notice shelve_upcoming",
        "notice shelve_upcoming",
        "shelve",
    ]
    assert rows[-1]["when"].startswith("2026-03-15")
    short = runner.invoke(
        app, ["plan", "--store", env, "--now", NOW.isoformat(), "--within", "8d", "--json"]
    )
    assert [r["what"] for r in json.loads(short.stdout) if r["resource_id"] == sid] == [
        "notice shelve_upcoming"
    ]


def test_the_cap_exits_non_zero_and_the_breaker_can_be_reset(world: World, env: str) -> None:
    for _ in range(2):
        world.timer(world.server())
    capped = runner.invoke(
        app, ["sweep", "--store", env, "--now", NOW.isoformat(), "--max-actions", "1"]
    )
    assert capped.exit_code == 3, capped.output
    assert "alert" in capped.stdout
    status = runner.invoke(app, ["breaker", "status", "--store", env])
    assert status.stdout.startswith("open since")
    reset = runner.invoke(app, ["breaker", "reset", "--store", env])
    assert reset.exit_code == 0 and "was open" in reset.stdout
    assert runner.invoke(app, ["breaker", "status", "--store", env]).stdout.startswith("closed")


def test_a_dry_run_honours_the_cap_and_says_where_a_real_sweep_would_stop(
    world: World, env: str
) -> None:
    sids = [world.server() for _ in range(4)]
    for sid in sids:
        world.timer(sid)
    args = ["sweep", "--store", env, "--now", NOW.isoformat(), "--dry-run", "--max-actions", "2"]
    dry = runner.invoke(app, [*args, "--json"])
    assert dry.exit_code == 3, dry.output
    out = json.loads(dry.stdout)
    assert out["counts"]["would-act"] == 2
    assert out["stopped"] == "cap of 2 destructive actions per sweep reached"
    assert not out["breaker_opened"] and world.mutations() == []
    text = runner.invoke(app, args)
    assert "a real sweep would stop here: cap of 2 destructive actions per sweep reached" in (
        " ".join(text.stdout.split())
    )
    status = runner.invoke(app, ["breaker", "status", "--store", env])
    assert status.stdout.startswith("closed")


def test_sweep_warns_at_start_when_nothing_would_deliver_its_notices(
    world: World, env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from reclaim.mailer import MailLedger
    from reclaim.mailer.preflight import DeliveryStamp

    args = ["sweep", "--store", env, "--now", NOW.isoformat(), "--dry-run"]
    bare = runner.invoke(app, args)
    assert "WARNING: reclaim sweep: notices may reach nobody" in bare.stderr
    assert "no operator address and no fallback contact" in bare.stderr
    assert "no mail has ever been recorded as delivered" in bare.stderr

    monkeypatch.setenv("RECLAIM_MAILER__OPERATORS", '["ops@example.org"]')
    still = runner.invoke(app, args)
    assert "no operator address" not in still.stderr
    assert "no mail has ever been recorded as delivered" in still.stderr

    DeliveryStamp.beside(MailLedger(world.store)).stamp(NOW - timedelta(days=1))
    quiet = runner.invoke(app, args)
    assert "WARNING" not in quiet.stderr, quiet.stderr
