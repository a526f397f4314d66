"""The reconcile: stream the cloud, plan each resource with the pure policy, fix the store.

Servers, then images, then Keystone projects are read a page at a time. A page costs one
bulk read of its resources' stored timers (BatchGetItem, 100 keys a call) and one
``store.apply`` of its changes, before the next page is read. Memory stays flat in the size
of the cloud: the ids seen so far (needed to find timers of resources that are gone) live in
a temporary SQLite file, not in memory; the report keeps counts and at most ``max_rows``
drift rows.

Projects are reconciled from the property ``reconcile.allocation_end_property`` (the
allocation's end date): the cleanup and image-dependents timers of a project carrying it
are made what the allocation's ``allocation.ended`` (or ``allocation.renewed``) would have
made them. Projects without the property, and the project timers of projects the listing
does not have, are left alone: the property is not the only source of allocation events,
and the sweeper re-reads a project (and its exemption) before any cleanup. A project
listing that Keystone's ``list_limit`` cut short is reported (``projects_truncated``).

The first reconcile of a store (one without a :class:`ReconcileMark`: a new installation)
applies the first-install grace by itself, so that no action a listing finds long overdue
falls due before its notices have had time to go out. The mark is written after a complete
reconcile of the whole cloud, and later reconciles are plain ones. The CLI, ``reclaim
run``'s periodic reconcile and the Lambda ReconcileFunction all get this rule from here.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from reclaim.commands import TimerCommand
from reclaim.models.allocation import AllocationPayload
from reclaim.models.glance import ImagePayload
from reclaim.reconcile.cloud import ImageSource, OpenStackCloud, ProjectSource, ServerSource
from reclaim.reconcile.observe import (
    ALLOCATION_ENDED,
    IMAGE_RULE_IDS,
    PROJECT_RULE_IDS,
    SERVER_RULE_IDS,
    ObservationError,
    RulePlan,
    image_notification,
    plan_image,
    plan_missing,
    plan_project,
    plan_server,
    project_notification,
    server_notification,
)
from reclaim.settings import PolicySettings, ReconcileSettings, Settings
from reclaim.store.port import ReconcileLog, ReconcileMark, TimerStore
from reclaim.store.reconciles import reconcile_log
from reclaim.timers import Timer
from reclaim.views import stamp
from reclaim.wire import Notification

#: Changes that make the store differ from the cloud.
DRIFT = ("create", "cancel", "move")


@dataclass(frozen=True, slots=True)
class DriftRow:
    """One timer the store had wrong: what the reconcile did about it and why."""

    resource_type: str
    resource_id: str
    project_id: str | None
    rule: str
    change: str
    due_before: datetime | None
    due_after: datetime | None
    reason: str

    def as_json(self) -> dict[str, Any]:
        """The row as ``reclaim reconcile --json`` prints it."""
        return {
            "resource_type": self.resource_type,
            "resource_id": self.resource_id,
            "project_id": self.project_id,
            "rule": self.rule,
            "change": self.change,
            "due_before": _iso(self.due_before),
            "due_after": _iso(self.due_after),
            "reason": self.reason,
        }


def _iso(value: datetime | None) -> str | None:
    return stamp(value)


@dataclass
class ReconcileReport:
    """What a reconcile found and did: counts per rule and change, and the drift rows."""

    started: datetime
    dry_run: bool
    #: The grace applied (``--first-install``, or this is the store's first reconcile).
    first_install_grace: timedelta | None = None
    #: The store had no record of a complete reconcile of the whole cloud: the grace
    #: (``reconcile.first_install_grace``) applied by itself.
    first_reconcile: bool = False
    #: The store holds that record after this reconcile (complete, whole cloud, not a dry
    #: run), written by it (or by a concurrent first reconcile).
    recorded: bool = False
    #: The grace was asked for (``--first-install``), not taken from the setting.
    grace_forced: bool = False
    project: str | None = None
    servers: int = 0
    images: int = 0
    projects: int = 0
    #: Listed projects whose allocation-end property was read (the rest are left alone).
    allocations: int = 0
    allocation_property: str = ""
    #: Keystone cut the project listing at ``projects`` (its ``list_limit``): the projects
    #: beyond it were not read, so not reconciled (their timers are left alone).
    projects_truncated: bool = False
    skipped: int = 0
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    rows: list[DriftRow] = field(default_factory=list)
    rows_dropped: int = 0
    written: int = 0
    requests: int = 0

    def count(self, change: str, rule: str | None = None) -> int:
        """How many timers had ``change`` (of ``rule``, or of every rule)."""
        return sum(n for (r, c), n in self.counts.items() if c == change and rule in (None, r))

    @property
    def drift(self) -> int:
        """Timers the store had wrong (created, cancelled or moved)."""
        return sum(self.count(c) for c in DRIFT)

    def by_rule(self) -> dict[str, dict[str, int]]:
        """``{rule: {change: count}}`` for created, cancelled, moved and unchanged."""
        out: dict[str, dict[str, int]] = {}
        for (rule, change), n in sorted(self.counts.items()):
            if change != "absent":
                out.setdefault(rule, {c: 0 for c in (*DRIFT, "unchanged")})[change] = n
        return out

    @property
    def grace_until(self) -> datetime | None:
        """No action falls due sooner than this (``started`` + the grace), if a grace applied."""
        if self.first_install_grace is None:
            return None
        return self.started + self.first_install_grace

    def first_reconcile_note(self) -> str | None:
        """What the first reconcile of a store does about actions already due, or None."""
        if not self.first_reconcile:
            return None
        would = "would be" if self.dry_run else "are"
        if self.grace_until is None:
            line = (
                "first reconcile of this store: reconcile.first_install_grace is 0, so actions "
                f"already due {would} not restated and may be taken at the next sweep"
            )
        else:
            line = (
                f"first reconcile of this store: actions due sooner {would} restated to fall "
                f"due no earlier than {_iso(self.grace_until)} "
                f"({'--first-install' if self.grace_forced else 'reconcile.first_install_grace'}),"
                " their notices first"
            )
        if self.dry_run:
            line += "; dry run: the store stays new"
        elif self.project is not None:
            line += (
                f"; only --project {self.project} was reconciled: the store stays new until a "
                "reconcile of the whole cloud completes"
            )
        elif not self.recorded:
            line += (
                "; the project list was cut short: the store stays new and the next reconcile "
                "applies the grace again"
            )
        return line

    def warnings(self) -> list[str]:
        """What an operator must hear about this reconcile, one line each (CLI and daemon)."""
        out = []
        note = self.first_reconcile_note()
        if note is not None:
            out.append(note)
        if self.projects_truncated:
            out.append(
                f"Keystone's list_limit cut the project list at {self.projects} projects: those "
                "beyond were not reconciled (left alone); raise [resource] list_limit or "
                "[DEFAULT] list_limit in keystone.conf, or reconcile one with --project P"
            )
        if self.projects and not self.allocations and self.allocation_property:
            out.append(
                f"no listed project carries {self.allocation_property!r}: allocations were not "
                "reconciled (reconcile.allocation_end_property names the property)"
            )
        return out

    def as_json(self) -> dict[str, Any]:
        """The report as ``reclaim reconcile --json`` prints it."""
        return {
            "started": _iso(self.started),
            "dry_run": self.dry_run,
            "first_install_grace": self.first_install_grace.total_seconds()
            if self.first_install_grace
            else None,
            "first_install_until": _iso(self.grace_until),
            "first_reconcile": self.first_reconcile,
            "recorded": self.recorded,
            "project": self.project,
            "servers": self.servers,
            "images": self.images,
            "projects": self.projects,
            "allocations": self.allocations,
            "allocation_property": self.allocation_property or None,
            "projects_truncated": self.projects_truncated,
            "skipped": self.skipped,
            "drift": self.drift,
            "written": self.written,
            "requests": self.requests,
            "rules": self.by_rule(),
            "rows": [r.as_json() for r in self.rows],
            "rows_dropped": self.rows_dropped,
        }


class SeenIds:
    """Resource keys on disk (a temporary SQLite file): flat memory at any size.

    ``seen`` holds the resources the listing had; ``stale`` the timers found pending for
    resources it did not have, to be cancelled once the search over the store is done.
    """

    def __init__(self) -> None:
        fd, self.path = tempfile.mkstemp(prefix="reclaim-reconcile-", suffix=".sqlite")
        os.close(fd)
        self.db = sqlite3.connect(self.path)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("PRAGMA cache_size=-512")
        self.db.execute("CREATE TABLE seen (id TEXT PRIMARY KEY) WITHOUT ROWID")
        self.db.execute(
            "CREATE TABLE stale (rtype TEXT, rid TEXT, rule TEXT, PRIMARY KEY (rtype, rid, rule))"
            " WITHOUT ROWID"
        )

    def add(self, ids: Iterable[str]) -> None:
        self.db.executemany("INSERT OR IGNORE INTO seen VALUES (?)", ((i,) for i in ids))

    def __contains__(self, resource_id: object) -> bool:
        row = self.db.execute("SELECT 1 FROM seen WHERE id = ?", (resource_id,)).fetchone()
        return row is not None

    def add_stale(self, key: tuple[str, str, str]) -> None:
        self.db.execute("INSERT OR IGNORE INTO stale VALUES (?, ?, ?)", key)

    def stale(self, batch: int) -> Iterator[list[tuple[str, str, str]]]:
        """The stale keys, ``batch`` at a time."""
        cursor = self.db.execute("SELECT rtype, rid, rule FROM stale ORDER BY rtype, rid, rule")
        while rows := cursor.fetchmany(batch):
            yield [(str(a), str(b), str(c)) for a, b, c in rows]

    def close(self) -> None:
        self.db.close()
        os.unlink(self.path)


Progress = Callable[[int], None]
Key = tuple[str, str, str]


class BulkReads(Protocol):
    """A store that reads many timers at once (:meth:`DynamoTimerStore.get_many`)."""

    def get_many(self, keys: Sequence[Key]) -> dict[Key, Timer]: ...


def _source(conn_or_port: Any, page_size: int) -> ServerSource:
    if hasattr(conn_or_port, "server_pages"):
        return conn_or_port  # type: ignore[no-any-return]
    return OpenStackCloud(conn_or_port, page_size=page_size)


def read_timers(store: TimerStore, keys: Sequence[Key]) -> dict[Key, Timer]:
    """The stored timers of ``keys`` (absent ones left out): in bulk if the store can."""
    get_many = getattr(store, "get_many", None)
    if get_many is not None:
        found: dict[Key, Timer] = get_many(keys)
        return found
    wanted = set(keys)
    out: dict[Key, Timer] = {}
    for rtype, rid in dict.fromkeys(k[:2] for k in keys):
        out.update((t.key, t) for t in store.timers_for(rtype, rid) if t.key in wanted)
    return out


def _server_reason(plan: RulePlan, state: str | None) -> str:
    if plan.change == "create":
        return f"server is {state}; no pending timer"
    if plan.change == "move":
        return "start restated from the server's last change"
    if state is None:
        return "server no longer exists"
    return f"server is {state}"


def _deferred(plan: RulePlan, now: datetime, grace: timedelta | None) -> bool:
    """The plan's action was restated by the first-install grace (due at ``now + grace``)."""
    return (
        grace is not None
        and plan.change in ("create", "move")
        and plan.after is not None
        and plan.after.due_at == now + grace
    )


def _image_reason(plan: RulePlan, image: ImagePayload | None) -> str:
    if image is None:
        return "image no longer exists"
    marks = "hidden" if image.os_hidden else "end-of-life"
    if plan.change == "create":
        return f"image is {marks}; no pending warning"
    if plan.change == "move":
        return "warning restated from the image's last change"
    return "image is no longer hidden or end-of-life"


#: What each project rule is called in a drift row.
_PROJECT_RULE_NAMES = {
    "project-cleanup": "cleanup",
    "image-dependents": "image-dependents warning",
    "image-dependents-reminder": "image-dependents reminder",
}


def _day(value: datetime | None) -> str:
    """A date as the property would say it: the day alone at midnight UTC, else ISO ``Z``."""
    if value is None:
        return "?"
    if value.time() == datetime.min.time():
        return value.date().isoformat()
    return _iso(value) or "?"


def _project_reason(
    plan: RulePlan, n: Notification[AllocationPayload], policy: PolicySettings
) -> str:
    end = n.payload.end_date
    if n.event_type != ALLOCATION_ENDED:
        return f"allocation runs until {_day(end)}"
    if n.payload.project_id in policy.exempt_projects:
        return "project is exempt"
    what = _PROJECT_RULE_NAMES.get(plan.rule, plan.rule)
    if plan.change == "create":
        return f"allocation ended {_day(end)}; no pending {what}"
    if plan.change == "move":
        since = plan.after.since if plan.after is not None else None
        if since is not None and end is not None and since > end:
            return "first install: restated as if it ended later, to fall due after the grace"
        return "start restated from the allocation's end"
    return f"allocation ended {_day(end)}"


class _Run:
    """One reconcile in progress: accumulates the report, applies page by page."""

    def __init__(
        self, store: TimerStore, report: ReconcileReport, max_rows: int, dry_run: bool
    ) -> None:
        self.store = store
        self.report = report
        self.max_rows = max_rows
        self.dry_run = dry_run
        self.pending: list[TimerCommand] = []

    def record(
        self, plan: RulePlan, rtype: str, rid: str, project: str | None, reason: str
    ) -> None:
        self.report.counts[(plan.rule, plan.change)] += 1
        if plan.change not in DRIFT:
            return
        self.pending.extend(plan.commands)
        if len(self.report.rows) >= self.max_rows:
            self.report.rows_dropped += 1
            return
        self.report.rows.append(
            DriftRow(
                resource_type=rtype,
                resource_id=rid,
                project_id=project,
                rule=plan.rule,
                change=plan.change,
                due_before=plan.before.due_at if plan.before and plan.change != "create" else None,
                due_after=plan.after.due_at if plan.after and plan.change != "cancel" else None,
                reason=reason,
            )
        )

    def flush(self) -> None:
        """Write what this page changes: one ``store.apply`` for the whole page."""
        if self.pending and not self.dry_run:
            self.report.written += self.store.apply(self.pending).written
        self.pending = []

    def _stored(
        self, resource_type: str, ids: Sequence[str], rules: Sequence[str]
    ) -> dict[str, list[Timer]]:
        """The stored timers of a page's resources, by id (one batch read for the page)."""
        found = read_timers(self.store, [(resource_type, i, r) for i in ids for r in rules])
        return {i: [t for r in rules if (t := found.get((resource_type, i, r)))] for i in ids}

    def server_page(
        self,
        page: Sequence[Mapping[str, Any]],
        policy: PolicySettings,
        now: datetime,
        grace: timedelta | None,
    ) -> None:
        observed = []
        for server in page:
            self.report.servers += 1
            try:
                observed.append(server_notification(server))
            except ObservationError:
                self.report.skipped += 1
        stored = self._stored("server", [n.payload.server_id for n in observed], SERVER_RULE_IDS)
        for n in observed:
            sid, state = n.payload.server_id, n.payload.state
            for plan in plan_server(n, stored[sid], policy, now, grace=grace):
                reason = _server_reason(plan, state)
                if _deferred(plan, now, grace):
                    reason += "; first install: due no sooner than the grace"
                self.record(plan, "server", sid, n.payload.project_id, reason)
        self.flush()

    def image_page(self, page: Sequence[Mapping[str, Any]], policy: PolicySettings) -> None:
        observed = []
        for image in page:
            self.report.images += 1
            try:
                observed.append(image_notification(image))
            except ObservationError:
                self.report.skipped += 1
        stored = self._stored("image", [n.payload.id for n in observed], IMAGE_RULE_IDS)
        for n in observed:
            iid = n.payload.id
            for plan in plan_image(n, stored[iid], policy):
                self.record(plan, "image", iid, n.payload.owner, _image_reason(plan, n.payload))
        self.flush()

    def project_page(
        self,
        page: Sequence[Mapping[str, Any]],
        prop: str,
        policy: PolicySettings,
        now: datetime,
        grace: timedelta | None,
    ) -> None:
        observed = []
        for project in page:
            self.report.projects += 1
            try:
                n = project_notification(project, prop, now)
            except ObservationError:
                self.report.skipped += 1
                continue
            if n is not None:
                self.report.allocations += 1
                observed.append(n)
        stored = self._stored("project", [n.payload.project_id for n in observed], PROJECT_RULE_IDS)
        for n in observed:
            pid = n.payload.project_id
            for plan in plan_project(n, stored[pid], policy, now, grace=grace):
                self.record(plan, "project", pid, pid, _project_reason(plan, n, policy))
        self.flush()


def reconcile(
    conn_or_port: Any,
    store: TimerStore,
    settings: Settings | PolicySettings,
    now: datetime,
    *,
    project: str | None = None,
    dry_run: bool = False,
    first_install: timedelta | None = None,
    progress: Progress | None = None,
    max_rows: int = 1000,
    log: ReconcileLog | None = None,
) -> ReconcileReport:
    """Make the store's server, image and project timers what the events would have made them.

    ``conn_or_port`` is an openstacksdk ``Connection`` (admin) or a :class:`ServerSource`
    (images are reconciled too if it is also an :class:`ImageSource`, projects if it is a
    :class:`ProjectSource` and ``reconcile.allocation_end_property`` is not empty). ``now``
    is the reconcile's time, taken before the listing starts: cancels of timers that the
    cloud contradicts (and of timers of resources no longer listed) are stamped with it, so
    any event newer than the listing still wins. ``first_install`` is the grace of
    :func:`reclaim.reconcile.observe.first_install` for servers and of
    :func:`reclaim.reconcile.observe.plan_project` for project cleanups (image rules only
    warn). With ``dry_run`` nothing is written; the report says what would change.

    The first reconcile of a store applies the grace by itself: when ``log`` (by default
    the store's own, :func:`reclaim.store.reconciles.reconcile_log`) holds no
    :class:`ReconcileMark`, ``first_install`` defaults to ``reconcile.first_install_grace``
    (none if that is 0). A complete reconcile of the whole cloud (no ``project``, no
    ``dry_run``, the project listing not cut short) then writes the mark, grace included;
    until then every reconcile applies the grace again. A store that keeps no log (none
    given, not a DynamoDB store) is never taken for a new one.
    """
    if isinstance(settings, PolicySettings):
        policy, options = settings, ReconcileSettings()
    else:
        policy, options = settings.policy, settings.reconcile
    if log is None:
        log = reconcile_log(store)
    first = log is not None and log.completed() is None
    forced = first_install is not None
    if first and first_install is None and options.first_install_grace > timedelta(0):
        first_install = options.first_install_grace
    source = _source(conn_or_port, options.page_size)
    images: ImageSource | None = source if hasattr(source, "image_pages") else None  # type: ignore[assignment]
    prop = options.allocation_end_property
    projects: ProjectSource | None = (
        source  # type: ignore[assignment]
        if prop and hasattr(source, "project_pages")
        else None
    )
    report = ReconcileReport(
        started=now,
        dry_run=dry_run,
        first_install_grace=first_install,
        first_reconcile=first,
        grace_forced=forced,
        project=project,
        allocation_property=prop if projects is not None else "",
    )
    run = _Run(store, report, max_rows, dry_run)
    seen = SeenIds()
    try:
        for page in source.server_pages(project):
            seen.add(f"server#{s.get('id')}" for s in page)
            run.server_page(page, policy, now, first_install)
            if progress is not None:
                progress(len(page))
        if images is not None:
            for page in images.image_pages(project):
                seen.add(f"image#{i.get('id')}" for i in page)
                run.image_page(page, policy)
                if progress is not None:
                    progress(len(page))
        if projects is not None:
            for page in projects.project_pages(project):
                run.project_page(page, prop, policy, now, first_install)
                if progress is not None:
                    progress(len(page))
            report.projects_truncated = projects.projects_truncated
        # Timers of resources the listing no longer has: found first, cancelled after, so
        # that no write moves the due index under the search's pagination.
        for timer in _reconciled(store, project, images is not None):
            if f"{timer.resource_type}#{timer.resource_id}" not in seen:
                seen.add_stale(timer.key)
        for keys in seen.stale(100):
            for timer in read_timers(store, keys).values():
                if timer.state != "pending":
                    continue  # closed since it was found
                plan = plan_missing(timer, now)
                reason = (
                    _server_reason(plan, None)
                    if timer.resource_type == "server"
                    else _image_reason(plan, None)
                )
                run.record(plan, timer.resource_type, timer.resource_id, timer.project_id, reason)
            run.flush()
        run.flush()
        whole = project is None and not report.projects_truncated
        if first and log is not None and whole and not dry_run:
            log.record(ReconcileMark(at=now, grace=first_install))  # False: a concurrent one did
            report.recorded = True
    finally:
        seen.close()
        report.requests = getattr(source, "requests", 0)
    return report


def _all_pending(store: TimerStore) -> Iterator[Timer]:
    """Every pending timer, a bounded page at a time if the store can (no due order needed)."""
    pages = getattr(store, "pending_pages", None)
    if pages is None:
        yield from store.pending()
        return
    for page in pages(1000):  # each page at most 1 MB (a DynamoDB response)
        yield from page


def _reconciled(store: TimerStore, project: str | None, with_images: bool) -> Iterator[Timer]:
    """The pending timers a reconcile answers for: servers', and images' warnings."""
    for timer in _all_pending(store):
        if project is not None and timer.project_id != project:
            continue
        if timer.resource_type == "server" or (
            with_images and timer.resource_type == "image" and timer.rule in IMAGE_RULE_IDS
        ):
            yield timer
