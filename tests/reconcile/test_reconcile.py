"""Reconcile against the simulated cloud: first install, dry run, projects, failures, CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from reclaim.reconcile.cloud import ListingError
from reclaim.reconcile.engine import reconcile
from reclaim.store import DynamoTimerStore
from reclaim_sim import RecordingSink, SimServer
from tests.reconcile.conftest import POLICY, deliver, pending
from tests.support.poison import poison

GRACE = timedelta(days=14)


def test_first_install_sends_notices_first_and_acts_no_sooner_than_the_grace(
    sim_server: SimServer, admin_conn: Any, project_factory: Any, moto_store: DynamoTimerStore
) -> None:
    cloud = sim_server.cloud
    p = project_factory()
    now = cloud.clock.now()
    old_stopped = p.boot("old-stopped", state="stopped", updated_at=now - timedelta(days=60))
    new_stopped = p.boot("new-stopped", state="stopped", updated_at=now - timedelta(days=2))
    old_shelved = p.boot(
        "old-shelved", state="shelved_offloaded", updated_at=now - timedelta(days=200)
    )
    new_shelved = p.boot("new-shelved", state="shelved", updated_at=now - timedelta(days=10))
    p.boot("running")

    report = reconcile(
        admin_conn, moto_store, POLICY, now, project=p.project_id, first_install=GRACE
    )

    timers = {t.resource_id: t for t in moto_store.pending() if t.project_id == p.project_id}
    assert set(timers) == {old_stopped, new_stopped, old_shelved, new_shelved}
    for sid in (old_stopped, new_stopped, old_shelved):
        t = timers[sid]
        assert t.due_at == now + GRACE
        assert t.notices and all(n.due_at < t.due_at for n in t.notices)
    assert [n.before for n in timers[old_stopped].notices] == [timedelta(days=7), timedelta(1)]
    # the 30-day notice of the deletion is overdue: it goes out at the first sweep
    assert min(n.due_at for n in timers[old_shelved].notices) <= now
    # not due within the grace: dated from its own state change, untouched
    kept = timers[new_shelved].due_at
    assert kept is not None and kept > now + timedelta(days=169)
    # What a sweeper finds due before the grace is notices only, never an action.
    early = list(moto_store.pending(due_before=now + GRACE - timedelta(seconds=1)))
    assert early and all(t.next_due() != t.due_at for t in early)
    assert report.count("create") == 4

    # The daily reconcile that follows keeps the grace.
    later = reconcile(admin_conn, moto_store, POLICY, now + timedelta(days=1), project=p.project_id)
    assert later.drift == 0
    shelve = [t for t in moto_store.timers_for("server", old_stopped) if t.rule == "shelve"]
    assert [t.due_at for t in shelve] == [now + GRACE]


def test_dry_run_reports_the_drift_and_writes_nothing(
    sim_server: SimServer, admin_conn: Any, project_factory: Any, moto_store: DynamoTimerStore
) -> None:
    p = project_factory()
    now = sim_server.cloud.clock.now()
    p.boot("a", state="stopped", updated_at=now - timedelta(days=3))
    p.boot("b", state="shelved", updated_at=now - timedelta(days=3))

    dry = reconcile(admin_conn, moto_store, POLICY, now, project=p.project_id, dry_run=True)
    assert pending(moto_store, p.project_id) == {}
    assert dry.count("create", "shelve") == 1 and dry.count("create", "delete-shelved") == 1
    assert dry.written == 0
    assert {r.change for r in dry.rows} == {"create"}
    assert sim_server.cloud.requests.mutating_requests() == []

    real = reconcile(admin_conn, moto_store, POLICY, now, project=p.project_id)
    assert real.by_rule() == dry.by_rule()
    assert len(pending(moto_store, p.project_id)) == 2


def test_project_filter_leaves_other_projects_alone(
    sim_server: SimServer, admin_conn: Any, project_factory: Any, moto_store: DynamoTimerStore
) -> None:
    cloud = sim_server.cloud
    mine, theirs = project_factory(), project_factory()
    now = cloud.clock.now()
    mine.boot("m", state="stopped", updated_at=now - timedelta(days=1))
    gone = theirs.boot("t", state="stopped", updated_at=now - timedelta(days=1))
    reconcile(admin_conn, moto_store, POLICY, now, project=theirs.project_id)
    cloud.compute.delete(theirs.ctx, gone)  # its timer is stale now

    report = reconcile(admin_conn, moto_store, POLICY, now, project=mine.project_id)
    assert report.servers == 1
    assert len(pending(moto_store, theirs.project_id)) == 1
    assert len(pending(moto_store, mine.project_id)) == 1


def test_changed_after_the_stored_start_restarts_never_earlier(
    sim_server: SimServer,
    admin_conn: Any,
    project_factory: Any,
    recorder: RecordingSink,
    moto_store: DynamoTimerStore,
) -> None:
    """Started and stopped again while the listener was down: the old run must not stand."""
    cloud = sim_server.cloud
    p = project_factory()
    sid = p.boot("vm")
    cloud.clock.advance(timedelta(minutes=3))
    p.act(sid, "os-stop")
    deliver(moto_store, recorder.all())
    (first,) = [t.due_at for t in moto_store.timers_for("server", sid) if t.rule == "shelve"]
    assert first is not None
    cloud.clock.advance(timedelta(days=5, microseconds=250_000))
    p.act(sid, "os-start")  # lost
    cloud.clock.advance(timedelta(days=1))
    p.act(sid, "os-stop")  # lost
    restopped = cloud.clock.now()

    reconcile(admin_conn, moto_store, POLICY, cloud.clock.now(), project=p.project_id)
    (timer,) = [t for t in moto_store.timers_for("server", sid) if t.state == "pending"]
    assert timer.since is not None and timer.due_at is not None
    assert restopped <= timer.since < restopped + timedelta(seconds=1)
    assert timer.due_at > first


def test_exempt_and_running_servers_lose_their_timers(
    sim_server: SimServer, admin_conn: Any, project_factory: Any, moto_store: DynamoTimerStore
) -> None:
    cloud = sim_server.cloud
    p = project_factory()
    now = cloud.clock.now()
    a = p.boot("a", state="stopped", updated_at=now - timedelta(days=1))
    b = p.boot("b", state="stopped", updated_at=now - timedelta(days=1))
    reconcile(admin_conn, moto_store, POLICY, now, project=p.project_id)
    cloud.clock.advance(timedelta(hours=1))
    cloud.compute.set_metadata(p.ctx, a, {"reclaim:exempt": "yes"})
    p.act(b, "os-start")

    report = reconcile(admin_conn, moto_store, POLICY, cloud.clock.now(), project=p.project_id)
    assert pending(moto_store, p.project_id) == {}
    assert report.count("cancel", "shelve") == 2


def test_listing_failure_stops_without_writing(
    sim_server: SimServer, admin_conn: Any, project_factory: Any, moto_store: DynamoTimerStore
) -> None:
    p = project_factory()
    p.boot("a", state="stopped")
    sim_server.cloud.faults.add(service="compute", method="GET", status=503, count=1)
    with pytest.raises(ListingError, match="503"):
        reconcile(admin_conn, moto_store, POLICY, sim_server.cloud.clock.now())
    assert pending(moto_store) == {}


def test_cli_prints_the_drift_as_a_table_and_as_json(
    sim_server: SimServer, project_factory: Any, reconcile_cli: Callable[..., Any]
) -> None:
    p = project_factory()
    now = sim_server.cloud.clock.now()
    sid = p.boot("cli-vm", state="stopped", updated_at=now - timedelta(days=30))
    args = ["--project", p.project_id, "--now", now.isoformat()]

    table = reconcile_cli(*args, "--dry-run")
    assert table.exit_code == 0, table.output
    assert "1 timers would change" in table.output and sid in table.output

    out = reconcile_cli(*args, "--json", "--first-install", "--grace", "3d")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["rules"]["shelve"]["create"] == 1
    (row,) = data["rows"]
    assert row["resource_id"] == sid and row["change"] == "create"
    assert row["due_after"] == (now + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")

    bad = reconcile_cli(*args, "--first-install", "--grace", "0d")
    assert bad.exit_code == 2 and "grace must be positive" in bad.output


def test_an_unreadable_stored_item_stops_no_reconcile(
    sim_server: SimServer, admin_conn: Any, project_factory: Any, moto_store: DynamoTimerStore
) -> None:
    p = project_factory()
    now = sim_server.cloud.clock.now()
    good = p.boot("good", state="stopped", updated_at=now - timedelta(days=3))
    bad = p.boot("bad", state="stopped", updated_at=now - timedelta(days=3))
    poison(moto_store, bad)
    poison(moto_store, "gone-from-the-cloud", "garbage")
    key = {"pk": {"S": f"server#{bad}"}, "sk": {"S": "timers"}}
    before = moto_store.client.get_item(TableName=moto_store.table, Key=key)["Item"]

    for dry_run in (True, False):
        report = reconcile(admin_conn, moto_store, POLICY, now, project=p.project_id,
                           dry_run=dry_run)  # fmt: skip
        assert report.count("create", "shelve") >= 1
    assert [k[1] for k in pending(moto_store, p.project_id)] == [good]
    assert moto_store.client.get_item(TableName=moto_store.table, Key=key)["Item"] == before
    assert {u.key for u in moto_store.unreadable()} == {
        f"server#{bad}",
        "server#gone-from-the-cloud",
    }
