"""The first reconcile of a new store gives overdue actions the first-install grace by itself.

A plain reconcile on an empty store (a new installation) used to create timers already
overdue for servers stopped or shelved long ago, and the sweeper then shelved and deleted
them after a single day's notice. These tests run the reconcile over HTTP against the
simulated cloud (unpatched openstacksdk), as the CLI, ``reclaim run`` and the Lambda do.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from reclaim.commands import iso_z
from reclaim.reconcile.engine import ReconcileReport, reconcile
from reclaim.serverless import reconcile as reconcile_function
from reclaim.settings import Settings, SweepSettings
from reclaim.store import DynamoTimerStore, open_store
from reclaim.store.port import ReconcileMark
from reclaim.store.reconciles import ReconcileRecord
from reclaim.sweeper import OpenStackCloud, RecordingNotices, Sweeper
from reclaim.timers import Timer
from reclaim_sim import Cloud, SimServer
from tests.reconcile.conftest import Project, pending, periodic_reconcile

GRACE = timedelta(days=10)
SETTINGS = Settings(reconcile={"first_install_grace": "10d"})


def _timer(store: DynamoTimerStore, rtype: str, rid: str, rule: str) -> Timer:
    (timer,) = [t for t in store.timers_for(rtype, rid) if t.rule == rule]
    assert timer.state == "pending"
    return timer


def _long_idle(p: Project, now: datetime) -> tuple[str, str]:
    """A server stopped three months ago and one shelved a year ago, in project ``p``."""
    stopped = p.boot("stopped-3-months", state="stopped", updated_at=now - timedelta(days=90))
    shelved = p.boot(
        "shelved-a-year", state="shelved_offloaded", updated_at=now - timedelta(days=365)
    )
    return stopped, shelved


def _note(report: ReconcileReport) -> str:
    (note,) = [w for w in report.warnings() if w.startswith("first reconcile of this store")]
    return note


def test_a_plain_first_reconcile_gives_the_grace_and_the_sweep_a_day_later_acts_on_nothing(
    sim_server: SimServer, admin_conn: Any, project_factory: Any, new_store: DynamoTimerStore
) -> None:
    cloud = sim_server.cloud
    p, ended = project_factory(), project_factory()
    now = cloud.clock.now()
    stopped, shelved = _long_idle(p, now)
    cloud.identity.update_project(ended.project_id, allocation_end=iso_z(now - timedelta(365)))

    report = reconcile(admin_conn, new_store, SETTINGS, now)

    # Every action the listing found overdue falls due at now + grace, its notices first.
    shelve = _timer(new_store, "server", stopped, "shelve")
    delete = _timer(new_store, "server", shelved, "delete-shelved")
    cleanup = _timer(new_store, "project", ended.project_id, "project-cleanup")
    for timer in (shelve, delete, cleanup):
        assert timer.due_at == now + GRACE
        assert timer.notices and all(n.due_at < now + GRACE for n in timer.notices)
    assert sorted(n.due_at for n in shelve.notices) == [now + GRACE - timedelta(7), now + GRACE - timedelta(1)]  # fmt: skip
    # The report, its JSON and the operator's summary line say it was the first reconcile.
    assert report.first_reconcile and report.recorded and report.first_install_grace == GRACE
    data = report.as_json()
    assert (data["first_reconcile"], data["recorded"]) == (True, True)
    assert data["first_install_grace"] == GRACE.total_seconds()
    assert data["first_install_until"] == iso_z(now + GRACE)
    assert f"no earlier than {iso_z(now + GRACE)} (reconcile.first_install_grace)" in _note(report)
    rows = {r.resource_id: r for r in report.rows if r.resource_type == "server"}
    assert "first install" in rows[stopped].reason
    # The store now records its first complete reconcile, with the grace it applied.
    assert ReconcileRecord.beside(new_store).completed() == ReconcileMark(at=now, grace=GRACE)

    # The sweeps that follow send the notices and take no action within the grace.
    notices = RecordingNotices()
    sweeper = Sweeper(
        new_store, OpenStackCloud(admin_conn), notices, SETTINGS.policy, "first",
        SweepSettings(retry_sleep=0.01),
    )  # fmt: skip
    cloud.requests.clear()
    sweeper.sweep(now)
    cloud.clock.advance(timedelta(hours=25))
    sweeper.sweep(now + timedelta(hours=25))
    assert cloud.requests.mutating_requests() == []
    # The deletion's and the cleanup's 30-day notices were overdue: they went out at once;
    # the shelve's (7 and 1 days before now + 10 days) are not due yet.
    assert {"delete_upcoming", "cleanup_upcoming"} <= set(notices.kinds())
    assert "shelve_upcoming" not in notices.kinds()
    assert not {"shelved", "deleted", "project_cleaned"} & set(notices.kinds())
    servers = {s: cloud.compute.servers[s].vm_state for s in (stopped, shelved)}
    assert servers == {stopped: "stopped", shelved: "shelved_offloaded"}

    # A second reconcile is a plain one, and has nothing to change.
    again = reconcile(admin_conn, new_store, SETTINGS, now + timedelta(hours=25))
    assert not again.first_reconcile and again.first_install_grace is None
    assert (again.drift, again.written) == (0, 0)
    assert not [w for w in again.warnings() if w.startswith("first reconcile")]
    assert _timer(new_store, "server", stopped, "shelve").due_at == now + GRACE


def test_with_the_record_a_reconcile_after_lost_events_applies_no_grace(
    sim_server: SimServer, admin_conn: Any, project_factory: Any, moto_store: DynamoTimerStore
) -> None:
    """``moto_store`` has completed a reconcile before: what the listing finds overdue is
    overdue, as it always was (the sweeper's minimum notice lead is its only delay)."""
    p = project_factory()
    now = sim_server.cloud.clock.now()
    stopped, shelved = _long_idle(p, now)

    report = reconcile(admin_conn, moto_store, SETTINGS, now)

    assert not report.first_reconcile and report.first_install_grace is None
    assert report.as_json()["first_reconcile"] is False
    assert not [w for w in report.warnings() if w.startswith("first reconcile")]
    shelve = _timer(moto_store, "server", stopped, "shelve").due_at
    delete = _timer(moto_store, "server", shelved, "delete-shelved").due_at
    assert shelve is not None and delete is not None
    assert abs(shelve - (now - timedelta(days=90 - 14))) < timedelta(seconds=1)
    assert abs(delete - (now - timedelta(days=365 - 180))) < timedelta(seconds=1)


def test_a_dry_run_or_one_project_leaves_the_store_new(
    sim_server: SimServer, admin_conn: Any, project_factory: Any, new_store: DynamoTimerStore
) -> None:
    cloud = sim_server.cloud
    p = project_factory()
    now = cloud.clock.now()
    stopped, _ = _long_idle(p, now)
    record = ReconcileRecord.beside(new_store)
    cloud.requests.clear()

    dry = reconcile(admin_conn, new_store, SETTINGS, now, dry_run=True)
    assert dry.first_reconcile and dry.first_install_grace == GRACE and not dry.recorded
    assert "would be restated" in _note(dry) and "dry run: the store stays new" in _note(dry)
    due = [r.due_after for r in dry.rows if r.resource_id == stopped]
    assert due == [now + GRACE]
    assert (pending(new_store), dry.written, record.completed()) == ({}, 0, None)
    assert cloud.requests.mutating_requests() == []

    # One project is not the whole cloud: the grace applies, the store stays new.
    one = reconcile(admin_conn, new_store, SETTINGS, now, project=p.project_id)
    assert one.first_reconcile and not one.recorded and record.completed() is None
    assert f"only --project {p.project_id} was reconciled" in _note(one)
    assert _timer(new_store, "server", stopped, "shelve").due_at == now + GRACE
    # ... so the next reconcile of the whole cloud gives the grace again, and records it.
    later = now + timedelta(hours=2)
    whole = reconcile(admin_conn, new_store, SETTINGS, later)
    assert whole.first_reconcile and whole.recorded
    assert record.completed() == ReconcileMark(at=later, grace=GRACE)


def test_the_cli_says_so_and_grace_alone_is_refused(
    sim_server: SimServer, project_factory: Any, reconcile_cli: Callable[..., Any]
) -> None:
    p = project_factory()
    now = sim_server.cloud.clock.now()
    stopped, _ = _long_idle(p, now)
    until = iso_z(now + timedelta(days=14))  # reconcile.first_install_grace's default
    at = ["--now", now.isoformat()]

    dry = reconcile_cli(*at, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert (
        "first reconcile of this store: actions due sooner would be restated to fall due "
        in dry.output
    )
    assert f"no earlier than {until} (reconcile.first_install_grace)" in dry.output
    assert "dry run: the store stays new" in dry.output

    out = reconcile_cli(*at, "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert (data["first_reconcile"], data["recorded"], data["first_install_until"]) == (True, True, until)  # fmt: skip
    (row,) = [r for r in data["rows"] if r["resource_id"] == stopped]
    assert row["due_after"] == until

    plain = reconcile_cli(*at)
    assert plain.exit_code == 0, plain.output
    assert "first reconcile" not in plain.output and "0 timers changed" in plain.output

    alone = reconcile_cli(*at, "--grace", "3d")
    assert alone.exit_code == 2 and "--grace needs --first-install" in alone.output


def test_the_lambda_and_the_daemon_reconcile_by_the_same_rule(
    sim_server: SimServer,
    admin_conn: Any,
    project_factory: Any,
    new_store: DynamoTimerStore,
    caplog: Any,
) -> None:
    cloud: Cloud = sim_server.cloud
    p = project_factory()
    now = cloud.clock.now()
    stopped, _ = _long_idle(p, now)
    settings = Settings()

    # The ReconcileFunction's handler on a daily tick: a new table gets the grace.
    tick = {"source": "aws.events", "detail-type": "Scheduled Event", "time": iso_z(now)}
    first = reconcile_function.handle(tick, admin_conn, new_store, settings)
    assert (first["first_reconcile"], first["recorded"]) == (True, True)
    assert _timer(new_store, "server", stopped, "shelve").due_at == now + timedelta(days=14)
    second = reconcile_function.handle(tick, admin_conn, new_store, settings)
    assert second["first_reconcile"] is False and second["drift"] == 0

    # reclaim run's periodic reconcile (the call cli/run.py makes) on another new store.
    other = project_factory()
    idle = other.boot("idle", state="stopped", updated_at=now - timedelta(days=40))
    fresh = open_store(f"memory://daemon-{other.project_id}")
    lines = periodic_reconcile(admin_conn, fresh, settings, cloud.clock.now, caplog)
    warnings = [line["warning"] for level, line in lines if level == logging.WARNING]
    assert any(w.startswith("first reconcile of this store: ") for w in warnings), warnings
    assert _timer(fresh, "server", idle, "shelve").due_at == now + timedelta(days=14)
    assert ReconcileRecord.beside(fresh).completed() is not None
