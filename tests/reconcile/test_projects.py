"""Reconcile of projects' allocations from a Keystone property against the simulated cloud."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reclaim.commands import iso_z
from reclaim.reconcile.cloud import OpenStackCloud
from reclaim.reconcile.engine import reconcile
from reclaim.reconcile.observe import ObservationError, project_notification
from reclaim.routes import commands_for
from reclaim.settings import PolicySettings, Settings
from reclaim.store import DynamoTimerStore, open_store
from reclaim.timers import Timer
from reclaim_sim import Cloud, SimServer
from tests.reconcile.conftest import POLICY, pending, periodic_reconcile

PROP = "allocation_end"
CLEANUP, WARNING, REMINDER = "project-cleanup", "image-dependents", "image-dependents-reminder"
GRACE = timedelta(days=14)


def _ends(p: Any, value: str | None) -> None:
    """Set (or, with None, remove) the project's allocation-end property in Keystone."""
    p.cloud.identity.update_project(p.project_id, **{PROP: value})


def _timers(store: DynamoTimerStore, project_id: str) -> dict[str, Timer]:
    """The project's pending timers by rule."""
    return {t.rule: t for t in store.timers_for("project", project_id) if t.state == "pending"}


def _ended_event(project_id: str, end_date: str, sent: datetime) -> dict[str, Any]:
    """The ``allocation.ended`` an allocation system publishes (oslo flat envelope)."""
    return {
        "message_id": f"alloc-{project_id}",
        "publisher_id": "allocations.example",
        "event_type": "allocation.ended",
        "priority": "INFO",
        "timestamp": sent.strftime("%Y-%m-%d %H:%M:%S.%f"),
        "payload": {"project_id": project_id, "allocation_id": "A-1", "end_date": end_date},
    }


def test_an_allocation_ended_without_an_event_gets_its_cleanup_and_warnings(
    sim_server: SimServer, admin_conn: Any, project_factory: Any, moto_store: DynamoTimerStore
) -> None:
    p = project_factory()
    _ends(p, "2026-01-31")
    now = sim_server.cloud.clock.now()

    report = reconcile(admin_conn, moto_store, POLICY, now, project=p.project_id)

    ended = datetime(2026, 1, 31, tzinfo=UTC)
    due = ended + timedelta(days=180)
    timers = _timers(moto_store, p.project_id)
    assert set(timers) == {CLEANUP, WARNING, REMINDER}
    cleanup = timers[CLEANUP]
    assert (cleanup.action, cleanup.due_at, cleanup.since) == ("cleanup", due, ended)
    assert [(n.kind, n.due_at) for n in cleanup.notices] == [
        ("allocation_ended", ended),
        ("cleanup_upcoming", due - timedelta(days=30)),
        ("cleanup_upcoming", due - timedelta(days=7)),
        ("cleanup_upcoming", due - timedelta(days=1)),
    ]
    assert timers[WARNING].action == timers[REMINDER].action == "scan_dependents"
    assert timers[WARNING].due_at == ended  # past: the dependents hear at the next sweep
    assert timers[REMINDER].due_at == due - timedelta(days=7)
    assert {t.detail["images_go_at"] for t in timers.values() if t.rule != CLEANUP} == {iso_z(due)}
    assert report.projects == 1 and report.count("create") == 3
    reasons = {r.rule: r.reason for r in report.rows if r.resource_type == "project"}
    assert reasons[CLEANUP] == "allocation ended 2026-01-31; no pending cleanup"
    assert reasons[WARNING] == "allocation ended 2026-01-31; no pending image-dependents warning"
    assert report.as_json()["projects"] == 1

    again = reconcile(
        admin_conn, moto_store, POLICY, now + timedelta(hours=6), project=p.project_id
    )
    assert (again.drift, again.written) == (0, 0)
    assert again.count("unchanged") == 3


def test_the_property_alone_makes_what_the_ended_event_makes(
    sim_server: SimServer, admin_conn: Any, project_factory: Any, moto_store: DynamoTimerStore
) -> None:
    p = project_factory()
    _ends(p, "2026-02-10T00:00:00Z")
    now = sim_server.cloud.clock.now()
    events = open_store(f"memory://projects-events-{p.project_id}")
    sent = datetime(2026, 2, 10, 3, 15, tzinfo=UTC)  # published a little after the end
    events.apply(commands_for(_ended_event(p.project_id, "2026-02-10", sent), POLICY))

    reconcile(admin_conn, moto_store, POLICY, now, project=p.project_id)

    expected = pending(events, p.project_id)
    assert len(expected) == 3
    assert pending(moto_store, p.project_id) == expected
    # The store the event reached needs nothing from the reconcile.
    clean = reconcile(admin_conn, events, POLICY, now, project=p.project_id)
    assert (clean.drift, clean.written) == (0, 0)
    assert pending(events, p.project_id) == expected
    assert _timers(events, p.project_id)[CLEANUP].detail["allocation_id"] == "A-1"


def test_a_renewed_allocation_loses_its_cleanup_and_projects_without_the_property_keep_theirs(
    sim_server: SimServer, admin_conn: Any, project_factory: Any, moto_store: DynamoTimerStore
) -> None:
    cloud = sim_server.cloud
    renewed, silent, gone = project_factory(), project_factory(), project_factory()
    sent = cloud.clock.now() - timedelta(days=20)
    for p in (renewed, silent, gone):
        moto_store.apply(commands_for(_ended_event(p.project_id, "2026-02-01", sent), POLICY))
    _ends(renewed, "2026-12-31")  # the renewal's event was lost
    cloud.identity.delete_project(gone.project_id)  # not listed any more
    kept = {pid: pending(moto_store, pid) for pid in (silent.project_id, gone.project_id)}
    assert all(len(v) == 3 for v in kept.values())
    now = cloud.clock.now()

    report = reconcile(admin_conn, moto_store, POLICY, now)

    assert _timers(moto_store, renewed.project_id) == {}
    rows = [r for r in report.rows if r.resource_id == renewed.project_id]
    assert {(r.rule, r.change) for r in rows} == {
        (CLEANUP, "cancel"),
        (WARNING, "cancel"),
        (REMINDER, "cancel"),
    }
    assert {r.reason for r in rows} == {"allocation runs until 2026-12-31"}
    for pid, before in kept.items():
        assert pending(moto_store, pid) == before
    assert not [r for r in report.rows if r.resource_id in kept]
    assert report.projects == len(cloud.identity.projects)


def test_an_allocation_extended_then_ended_silently_restarts_from_its_new_end(
    sim_server: SimServer, admin_conn: Any, project_factory: Any, moto_store: DynamoTimerStore
) -> None:
    """Ended on 1 January (delivered), extended and ended again on 1 February (both lost):
    the cleanup counts from the end the property gives, not from the first one."""
    p = project_factory()
    first = datetime(2026, 1, 1, 6, 0, tzinfo=UTC)
    moto_store.apply(commands_for(_ended_event(p.project_id, "2026-01-01", first), POLICY))
    _ends(p, "2026-02-01")
    now = sim_server.cloud.clock.now()

    report = reconcile(admin_conn, moto_store, POLICY, now, project=p.project_id)

    ended = datetime(2026, 2, 1, tzinfo=UTC)
    timers = _timers(moto_store, p.project_id)
    assert timers[CLEANUP].due_at == ended + timedelta(days=180)
    assert timers[REMINDER].due_at == ended + timedelta(days=173)
    assert timers[REMINDER].detail["images_go_at"] == iso_z(ended + timedelta(days=180))
    rows = {r.rule: r for r in report.rows}
    assert (rows[CLEANUP].change, rows[CLEANUP].reason) == (
        "move",
        "start restated from the allocation's end",
    )
    assert rows[CLEANUP].due_before == datetime(2026, 6, 30, tzinfo=UTC)


def test_an_exempt_project_loses_its_cleanup(
    sim_server: SimServer, admin_conn: Any, project_factory: Any, moto_store: DynamoTimerStore
) -> None:
    p = project_factory()
    _ends(p, "2026-02-01")
    sent = datetime(2026, 2, 1, 8, 0, tzinfo=UTC)
    moto_store.apply(commands_for(_ended_event(p.project_id, "2026-02-01", sent), POLICY))
    exempt = PolicySettings(exempt_projects=frozenset({p.project_id}))
    now = sim_server.cloud.clock.now()

    report = reconcile(admin_conn, moto_store, exempt, now, project=p.project_id)

    assert _timers(moto_store, p.project_id) == {}
    assert report.count("cancel") == 3
    assert {r.reason for r in report.rows} == {"project is exempt"}


def test_first_install_gives_the_grace_to_an_allocation_that_ended_long_ago(
    sim_server: SimServer, admin_conn: Any, project_factory: Any, moto_store: DynamoTimerStore
) -> None:
    p = project_factory()
    now = sim_server.cloud.clock.now()
    _ends(p, iso_z(now - timedelta(days=365)))

    report = reconcile(
        admin_conn, moto_store, POLICY, now, project=p.project_id, first_install=GRACE
    )

    timers = _timers(moto_store, p.project_id)
    cleanup, warning, reminder = timers[CLEANUP], timers[WARNING], timers[REMINDER]
    assert cleanup.due_at == now + GRACE
    notices = {(n.kind, n.before): n.due_at for n in cleanup.notices}
    assert notices == {
        ("allocation_ended", timedelta(days=180)): now + GRACE - timedelta(days=180),
        ("cleanup_upcoming", timedelta(days=30)): now + GRACE - timedelta(days=30),
        ("cleanup_upcoming", timedelta(days=7)): now + GRACE - timedelta(days=7),
        ("cleanup_upcoming", timedelta(days=1)): now + GRACE - timedelta(days=1),
    }
    # Those further ahead of the cleanup than the grace are overdue: sent at the next sweep.
    assert {k for k, due in notices.items() if due < now} == {k for k in notices if k[1] > GRACE}
    assert warning.due_at is not None and warning.due_at <= now
    assert reminder.due_at is not None and now < reminder.due_at < cleanup.due_at
    assert {warning.detail["images_go_at"], reminder.detail["images_go_at"]} == {iso_z(now + GRACE)}
    # Before the grace, a sweeper finds notices and warnings only, never the cleanup.
    early = [t for t in moto_store.pending(due_before=now + GRACE) if t.project_id == p.project_id]
    assert early and all(t.rule != CLEANUP or t.next_due() != t.due_at for t in early)
    assert report.count("create") == 3

    later = reconcile(admin_conn, moto_store, POLICY, now + timedelta(days=1), project=p.project_id)
    assert (later.drift, later.written) == (0, 0)
    assert _timers(moto_store, p.project_id)[CLEANUP].due_at == now + GRACE


def test_project_filter_dry_run_and_an_unreadable_end(
    sim_server: SimServer, admin_conn: Any, project_factory: Any, moto_store: DynamoTimerStore
) -> None:
    mine, theirs, garbled = project_factory(), project_factory(), project_factory()
    _ends(mine, "2026-02-01")
    _ends(theirs, "2026-02-01")
    _ends(garbled, "end of February")
    now = sim_server.cloud.clock.now()

    dry = reconcile(admin_conn, moto_store, POLICY, now, project=mine.project_id, dry_run=True)
    assert (dry.projects, dry.count("create"), dry.written) == (1, 3, 0)
    assert {r.resource_id for r in dry.rows} == {mine.project_id}
    assert pending(moto_store) == {}

    real = reconcile(admin_conn, moto_store, POLICY, now, project=mine.project_id)
    assert real.by_rule() == dry.by_rule()
    assert set(pending(moto_store)) == {
        ("project", mine.project_id, r) for r in (CLEANUP, WARNING, REMINDER)
    }

    odd = reconcile(admin_conn, moto_store, POLICY, now, project=garbled.project_id)
    assert (odd.projects, odd.skipped, odd.drift) == (1, 1, 0)
    unknown = reconcile(admin_conn, moto_store, POLICY, now, project="no-such-project")
    assert (unknown.projects, unknown.drift) == (0, 0)


def test_projects_are_not_reconciled_without_a_property_name(
    sim_server: SimServer, admin_conn: Any, project_factory: Any, moto_store: DynamoTimerStore
) -> None:
    p = project_factory()
    _ends(p, "2026-02-01")
    settings = Settings(reconcile={"allocation_end_property": ""})
    now = sim_server.cloud.clock.now()
    report = reconcile(admin_conn, moto_store, settings, now, project=p.project_id)
    assert (report.projects, report.drift) == (0, 0)


def test_cli_reports_projects(
    sim_server: SimServer,
    project_factory: Any,
    reconcile_cli: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    p = project_factory()
    _ends(p, "2026-01-31")
    now = sim_server.cloud.clock.now()
    args = ["--project", p.project_id, "--now", now.isoformat()]

    table = reconcile_cli(*args, "--dry-run")
    assert table.exit_code == 0, table.output
    assert "1 projects (1 with allocation_end) read\n3 timers would change" in table.output
    assert "allocation ended 2026-01-31; no pending cleanup" in table.output

    out = reconcile_cli(*args, "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["projects"] == 1 and data["allocations"] == 1
    assert data["rules"][CLEANUP]["create"] == 1
    row = next(r for r in data["rows"] if r["rule"] == CLEANUP)
    assert (row["resource_type"], row["resource_id"]) == ("project", p.project_id)
    assert row["due_after"] == "2026-07-30T00:00:00Z"  # 180 days after the end

    # A misspelt property name reconciles nothing, and the summary says so.
    monkeypatch.setenv("RECLAIM_RECONCILE__ALLOCATION_END_PROPERTY", "allocation_ends")
    typo = reconcile_cli(*args)
    assert typo.exit_code == 0, typo.output
    assert "1 projects (0 with allocation_ends) read" in typo.output
    assert "no listed project carries 'allocation_ends'" in typo.output

    monkeypatch.setenv("RECLAIM_RECONCILE__ALLOCATION_END_PROPERTY", "")
    off = reconcile_cli(*args, "--json")
    assert off.exit_code == 0, off.output
    assert json.loads(off.stdout)["projects"] == 0


def test_the_property_reads_as_an_ended_or_a_running_allocation() -> None:
    now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    ended = project_notification({"id": "p", PROP: "2026-03-01T09:00:00+00:00"}, PROP, now)
    assert ended is not None
    assert (ended.event_type, ended.timestamp) == ("allocation.ended", now)
    day = project_notification({"id": "p", PROP: " 2026-02-28 "}, PROP, now)
    assert day is not None and day.payload.end_date == datetime(2026, 2, 28, tzinfo=UTC)
    runs = project_notification({"id": "p", PROP: "2026-03-01T20:00:00+10:00"}, PROP, now)
    assert runs is not None and (runs.event_type, runs.timestamp) == ("allocation.renewed", now)
    assert runs.payload.end_date == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert project_notification({"id": "p", PROP: ""}, PROP, now) is None
    assert project_notification({"id": "p"}, PROP, now) is None
    for bad in ("soon", 20260301, {"date": "2026-03-01"}):
        with pytest.raises(ObservationError):
            project_notification({"id": "p", PROP: bad}, PROP, now)


class _Response:
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status_code, self.text, self._body = status, json.dumps(body), body

    def json(self) -> dict[str, Any]:
        return self._body


class _Identity:
    """A Keystone (2025.1 or later) that pages its listing: two pages linked by
    ``links.next``, the full first one marked ``truncated``."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, Any]] = []

    def get(self, path: str, params: Any = None, raise_exc: bool = True) -> _Response:
        self.requests.append((path, params))
        nxt = "https://keystone.example/v3/projects?limit=1&marker=a"
        if path == "/projects":
            body = {"projects": [{"id": "a"}], "links": {"next": nxt}, "truncated": True}
            return _Response(200, body)
        if path == nxt:
            return _Response(200, {"projects": [{"id": "b"}], "links": {"next": None}})
        if path == "/projects/a":
            return _Response(200, {"project": {"id": "a"}})
        return _Response(404, {"error": {"code": 404}})


def test_the_project_listing_follows_keystones_next_link_and_a_missing_project_is_none() -> None:
    identity = _Identity()
    cloud = OpenStackCloud(type("Conn", (), {"identity": identity})(), page_size=1)
    assert [[p["id"] for p in page] for page in cloud.project_pages()] == [["a"], ["b"]]
    # A truncated page whose next page was read is no truncation: the listing is whole.
    assert cloud.projects_truncated is False
    # The page size goes as Keystone's ``limit``; the next link carries its own query.
    assert [params for _, params in identity.requests] == [{"limit": 1}, {}]
    assert [[p["id"] for p in page] for page in cloud.project_pages("a")] == [["a"]]
    assert list(cloud.project_pages("zzz")) == []
    assert cloud.requests == 4


def _allocations_for_the_cut(
    cloud: Cloud, project_factory: Any, store: DynamoTimerStore
) -> tuple[list[str], list[str]]:
    """Four new projects (the sim lists them last, in creation order) as two pairs, each of
    one whose allocation ended without an event (a reconcile that reads it creates its
    timers) and one renewed without an event after its end was delivered (a reconcile that
    reads it cancels them). Returns the first pair's ids and the second's."""
    sent = cloud.clock.now() - timedelta(days=20)
    pairs: list[list[str]] = []
    for _ in range(2):
        ended, renewed = project_factory(), project_factory()
        _ends(ended, "2026-01-31")
        store.apply(commands_for(_ended_event(renewed.project_id, "2026-02-01", sent), POLICY))
        _ends(renewed, "2026-12-31")
        pairs.append([ended.project_id, renewed.project_id])
    return pairs[0], pairs[1]


def _truncation_warning(listed: int) -> str:
    return (
        f"Keystone's list_limit cut the project list at {listed} projects: those beyond were "
        "not reconciled (left alone); raise [resource] list_limit or [DEFAULT] list_limit in "
        "keystone.conf, or reconcile one with --project P"
    )


def test_a_project_list_cut_by_keystones_list_limit_is_reported_and_the_rest_left_alone(
    sim_cloud: Cloud,
    project_factory: Any,
    reconcile_cli: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = open_store(os.environ["RECLAIM_STORE_URL"])  # the store the CLI reconciles
    seen, cut = _allocations_for_the_cut(sim_cloud, project_factory, store)
    listed = len(sim_cloud.identity.projects) - len(cut)
    monkeypatch.setattr(sim_cloud.config, "keystone_project_list_limit", listed)
    before = {pid: pending(store, pid) for pid in cut}
    assert [len(v) for v in before.values()] == [0, 3]
    args = ["--now", sim_cloud.clock.now().isoformat()]

    dry = reconcile_cli(*args, "--json", "--dry-run")
    assert dry.exit_code == 0, dry.output
    data = json.loads(dry.stdout)
    assert (data["projects_truncated"], data["projects"]) == (True, listed)
    mine = {(r["resource_id"], r["change"]) for r in data["rows"] if r["resource_id"] in seen + cut}
    assert mine == {(seen[0], "create"), (seen[1], "cancel")}

    out = reconcile_cli(*args)
    assert out.exit_code == 0, out.output
    assert f" and {listed} projects (" in out.output
    assert _truncation_warning(listed) in out.output.splitlines()
    assert set(_timers(store, seen[0])) == {CLEANUP, WARNING, REMINDER}
    assert _timers(store, seen[1]) == {}
    assert {pid: pending(store, pid) for pid in cut} == before  # nothing created or cancelled

    # The way out the warning gives: one project at a time is read whatever the limit.
    one = reconcile_cli(*args, "--project", cut[0])
    assert one.exit_code == 0, one.output
    assert "list_limit" not in one.output
    assert set(_timers(store, cut[0])) == {CLEANUP, WARNING, REMINDER}


def test_a_project_list_exactly_at_keystones_list_limit_is_whole(
    sim_cloud: Cloud,
    project_factory: Any,
    reconcile_cli: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    last = project_factory()
    _ends(last, "2026-01-31")
    total = len(sim_cloud.identity.projects)
    monkeypatch.setattr(sim_cloud.config, "keystone_project_list_limit", total)
    args = ["--now", sim_cloud.clock.now().isoformat()]

    dry = reconcile_cli(*args, "--json", "--dry-run")
    assert dry.exit_code == 0, dry.output
    data = json.loads(dry.stdout)
    assert (data["projects_truncated"], data["projects"]) == (False, total)
    assert last.project_id in {r["resource_id"] for r in data["rows"] if r["rule"] == CLEANUP}

    out = reconcile_cli(*args)
    assert out.exit_code == 0, out.output
    assert f"{total} projects (" in out.output
    assert "list_limit" not in out.output


def test_the_periodic_reconcile_logs_a_cut_project_list(
    sim_cloud: Cloud,
    admin_conn: Any,
    project_factory: Any,
    moto_store: DynamoTimerStore,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen, cut = _allocations_for_the_cut(sim_cloud, project_factory, moto_store)
    listed = len(sim_cloud.identity.projects) - len(cut)
    monkeypatch.setattr(sim_cloud.config, "keystone_project_list_limit", listed)
    lines = periodic_reconcile(admin_conn, moto_store, Settings(), sim_cloud.clock.now, caplog)
    assert [line["event"] for _, line in lines] == ["reconciled", "reconcile_warning"]
    counts = lines[0][1]["by_rule"]  # counts are integers, not a dict printed as text
    assert counts[CLEANUP]["create"] >= 1 and all(
        type(n) is int for by_change in counts.values() for n in by_change.values()
    ), counts
    assert lines[0][1]["drift"] == sum(
        c["create"] + c["cancel"] + c["move"] for c in counts.values()
    )
    assert lines[1] == (
        logging.WARNING,
        {"event": "reconcile_warning", "warning": _truncation_warning(listed)},
    )
    assert set(_timers(moto_store, seen[0])) == {CLEANUP, WARNING, REMINDER}
    assert _timers(moto_store, cut[0]) == {} and len(_timers(moto_store, cut[1])) == 3
