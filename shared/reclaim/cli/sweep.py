"""The sweeper's commands: ``sweep``, ``plan``, ``audit``, ``breaker status|reset``."""

from __future__ import annotations

import getpass
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, get_args

import typer
from rich.console import Console
from rich.text import Text

from reclaim.cli.bus import bus_or_exit
from reclaim.cli.common import (
    cloud_or_exit,
    fail,
    instant_or_exit,
    print_json,
    printable,
    settings_or_exit,
    store_or_exit,
    unreadable_note,
)
from reclaim.cli.output import Column, ColumnOpt, Format, FormatOpt, LongOpt, View, emit, view_of
from reclaim.cli.progress import Reporter
from reclaim.cli.resolve import NAMED, CloudOpt, project_or_exit, resource_or_exit
from reclaim.commands import ResourceType
from reclaim.durations import format_duration, parse_duration
from reclaim.settings import Settings
from reclaim.sweeper import (
    Breaker,
    OpenStackCloud,
    OsloNotices,
    RecordingNotices,
    Sweeper,
    SweepReport,
)
from reclaim.sweeper.cloud import Progress, cleanup_connector
from reclaim.sweeper.notices import NoticePort
from reclaim.sweeper.sweep import held_reason, planned_date
from reclaim.timers import Timer
from reclaim.views import stamp

StoreOpt = Annotated[
    str | None,
    typer.Option("--store", help="Timer store URL (default: RECLAIM_STORE_URL or memory://)."),
]
RESOURCE_TYPES: tuple[str, ...] = get_args(ResourceType)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
NowOpt = Annotated[
    str | None,
    typer.Option("--now", help="Sweep as if it were this time (ISO 8601, UTC if no zone)."),
]


def cloud_port(conn: Any, settings: Settings, progress: Progress | None = None) -> OpenStackCloud:
    """The cloud as the sweeper sees it; project cleanup runs as ``sweep.cleanup_cloud`` and
    tells ``progress`` what it is deleting."""
    entry = settings.sweep.cleanup_cloud
    if not entry:
        return OpenStackCloud(conn, progress=progress)
    import openstack

    try:
        cleaner = openstack.connect(cloud=entry).current_user_id
    except Exception as exc:
        fail(f"sweep.cleanup_cloud {entry!r}: {exc}")
    return OpenStackCloud(
        conn, cleanup_connect=cleanup_connector(entry), cleanup_user_id=cleaner, progress=progress
    )


def owner_id() -> str:
    """This sweeper's name in leases and audit entries: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _report_json(report: SweepReport) -> dict[str, Any]:
    return {
        "started": report.started.isoformat(),
        "dry_run": report.dry_run,
        "counts": dict(report.counts()),
        "notices_sent": report.notices_sent(),
        "alerts_sent": report.alerts_sent(),
        "would_send": report.would_send(),
        "published": dict(sorted(report.published.items())),
        "notices_failed": report.notices_failed,
        "stopped": report.stopped,
        "breaker_opened": report.breaker_opened,
        "breaker_was_open": report.breaker_was_open,
        "alerts": report.alerts,
        "unreadable": report.unreadable,
        "outcomes": [
            {
                "resource_type": o.resource_type,
                "resource_id": o.resource_id,
                "rule": o.rule,
                "action": o.action,
                "result": o.result,
                "reason": o.reason,
                "notices": list(o.notices),
                "request_ids": list(o.request_ids),
                "project_id": o.project_id,
            }
            for o in report.outcomes
        ],
    }


SWEEP_COLUMNS = (
    Column("resource_type", "type"),
    Column("resource_id", "id", kind="id"),
    Column("rule"),
    Column("result"),
    Column("notices"),
    Column("reason", "why"),
)


def _summary(report: SweepReport, view: View, out: Console | None = None) -> None:
    title = "Sweep" + (" (dry run: nothing changed)" if report.dry_run else "")
    rows = [
        {"resource_type": o.resource_type, "resource_id": o.resource_id, "rule": o.rule,
         "result": o.result, "notices": ",".join(o.notices), "reason": o.reason}
        for o in report.outcomes
    ]  # fmt: skip
    emit(rows, SWEEP_COLUMNS, title, view, out)


def sweep(
    store: StoreOpt = None,
    cloud: Annotated[
        str | None,
        typer.Option("--cloud", help="clouds.yaml entry (default: sweep.cloud, OS_CLOUD)."),
    ] = None,
    dry_run: Annotated[
        bool | None,
        typer.Option("--dry-run/--no-dry-run", help="Read only: no mutating request at all."),
    ] = None,
    now: NowOpt = None,
    max_actions: Annotated[
        int | None, typer.Option("--max-actions", help="Destructive actions cap for this sweep.")
    ] = None,
    bus: Annotated[
        str | None,
        typer.Option(
            "--bus", help="Transport URL for notices (default: the bus settings' transport_url)."
        ),
    ] = None,
    fmt: FormatOpt = Format.table,
    column: ColumnOpt = None,
    long: LongOpt = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="The whole report as one JSON document.")
    ] = False,
    log_level: Annotated[
        str, typer.Option("--log-level", help="Level of the JSON log lines on stderr.")
    ] = "INFO",
) -> None:
    """One pass over the due timers: warn, re-check, act, record.

    Says what it is doing on stderr: a progress display on a terminal (a project cleanup
    names what it deletes), else JSON log lines. Exits 3 when a cap stopped it (in a dry
    run: would stop it), 1 when notices could not be sent (their timers stay due).
    """

    from reclaim.bus import log
    from reclaim.mailer.ledger import MailLedger
    from reclaim.mailer.preflight import warn_at_start

    settings = settings_or_exit()
    when = instant_or_exit(now)
    log.configure(log_level)
    sweep_settings = settings.sweep
    timer_store = store_or_exit(store, settings)
    warn_at_start("sweep", settings.mailer, MailLedger(timer_store))
    conn = cloud_or_exit(cloud or sweep_settings.cloud, "sweep.cloud")
    bus_settings = settings.bus
    if bus:
        bus_settings = bus_or_exit(transport_url=bus)
    dry = sweep_settings.dry_run if dry_run is None else dry_run
    # A notice is marked sent only after the bus took it: an unreachable bus fails the
    # notice within a few seconds (retried next sweep), it never loses it.
    notices: NoticePort = RecordingNotices() if dry else OsloNotices(bus_settings)
    with Reporter("sweep", "sweeping due timers") as progress:
        sweeper = Sweeper(
            timer_store,
            cloud_port(conn, settings, progress.step),
            notices,
            settings.policy,
            owner_id(),
            sweep_settings,
            allocation_end_property=settings.reconcile.allocation_end_property,
        )
        report = sweeper.sweep(
            when, dry_run=dry, max_actions=max_actions, progress=lambda _o: progress.advance()
        )
    view = view_of(fmt, column, long)
    if json_out:
        print_json(_report_json(report))
    elif view.fmt is not Format.table:
        _summary(report, view)
    else:
        out = Console()
        _summary(report, view, out)
        counts = ", ".join(f"{k} {v}" for k, v in sorted(report.counts().items())) or "nothing due"
        failed = f", {report.notices_failed} not sent" if report.notices_failed else ""
        said = (
            f"notices that would go out {report.would_send()}"
            if report.dry_run
            else f"notices {report.notices_sent()}, alerts {report.alerts_sent()}"
        )
        out.print(f"{counts}; {said}{failed}")
        if report.dry_run and report.stopped and report.stopped != "deadline":
            would = report.counts()["would-act"]
            out.print(
                f"a real sweep would stop here: {report.stopped} ({would} action(s) before it)"
            )
        if report.unreadable:
            keys = ", ".join(printable(k) for k in report.unreadable[:5])
            out.print(
                f"{len(report.unreadable)} stored item(s) unreadable, skipped: {keys}"
                + (", ..." if len(report.unreadable) > 5 else "")
                + " (reclaim store quarantine list)",
                markup=False,
            )
        for alert in report.alerts:
            out.print(f"[red]alert:[/] {alert}")
    if report.stopped and report.stopped != "deadline":
        raise typer.Exit(3)
    if report.notices_failed:
        raise typer.Exit(1)


def plan_rows(
    timers: list[Timer],
    project: str | None,
    until: datetime | None = None,
    floor: timedelta = timedelta(0),
) -> list[dict[str, Any]]:
    """What will happen to what, when: each pending notice and action (due by ``until``) in
    time order, on the schedule as the notices sent so far moved it; a held action (its
    reason in ``held``) is listed whenever it falls. Pure."""
    rows: list[dict[str, Any]] = []
    for t in timers:
        if project and t.project_id != project:
            continue
        base = {
            "resource_type": t.resource_type,
            "resource_id": t.resource_id,
            "name": t.detail.get("name", ""),
            "project_id": t.project_id,
            "rule": t.rule,
        }
        date, held = planned_date(t, floor)
        if date is None:
            continue
        due = (
            []
            if held
            else [(max(n.due_at, date - n.before), f"notice {n.kind}") for n in t.pending_notices()]
        )  # a held timer's notices wait
        due.append((date, f"{t.action} ({held})" if held else t.action))
        rows.extend(
            {**base, "when": stamp(at), "what": what, "at": at, "held": held}
            for at, what in due
            if until is None or at <= until or held
        )
    rows.sort(key=lambda r: (r["at"], r["resource_id"], r["what"]))
    return [{k: v for k, v in r.items() if k != "at"} for r in rows]


PLAN_COLUMNS = (
    Column("when", kind="time"),
    Column("what"),
    Column("resource_type", "type", table=False),  # the action or notice names it
    Column("resource_id", "id", kind="id"),
    Column("name"),
    Column("project_id", "project", kind="id"),
    Column("rule", table=False),
)


def plan(
    store: StoreOpt = None,
    within: Annotated[str, typer.Option("--within", help="How far ahead (e.g. 30d).")] = "30d",
    project: Annotated[
        str | None,
        typer.Option(
            "--project",
            help="Only this project: its id, a prefix of it, or its name (looked up in "
            "Keystone: --cloud or OS_CLOUD).",
        ),
    ] = None,
    cloud: CloudOpt = None,
    now: NowOpt = None,
    fmt: FormatOpt = Format.table,
    column: ColumnOpt = None,
    long: LongOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """The forecast: what will happen to what, and when (from the due index only)."""
    try:
        horizon: timedelta = parse_duration(within)
    except ValueError as exc:
        fail(str(exc))
    settings = settings_or_exit()
    start = instant_or_exit(now)
    end = start + horizon
    timer_store = store_or_exit(store, settings)
    if project is not None:
        project = project_or_exit(timer_store, project, cloud)
    timers = list(timer_store.pending(end))
    rows = plan_rows(timers, project, end, settings.sweep.min_notice_lead)
    title = f"Plan for the next {format_duration(horizon)}, until {stamp(end)}"
    view = view_of(fmt, column, long, json_out)
    emit(rows, PLAN_COLUMNS, title, view)
    unreadable_note(timer_store, view.fmt is not Format.table)


AUDIT_COLUMNS = (
    Column("at", kind="time"),
    Column("rule"),
    Column("what"),
    Column("outcome"),
    Column("why"),
    Column("request_ids", "request ids", table=False),
)


def audit(
    resource_type: Annotated[
        str,
        typer.Argument(
            metavar="TYPE",
            help=f"The resource's type: {', '.join(RESOURCE_TYPES)}.",
            show_default=False,
        ),
    ],
    resource_id: Annotated[
        str,
        typer.Argument(
            metavar="ID",
            help="Its id, a prefix of it that no other id starts with, or its name "
            f"({', '.join(NAMED)}: looked up in the cloud, --cloud or OS_CLOUD).",
        ),
    ],
    store: StoreOpt = None,
    cloud: CloudOpt = None,
    fmt: FormatOpt = Format.table,
    column: ColumnOpt = None,
    long: LongOpt = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="The timers and their history as one JSON document.")
    ] = False,
) -> None:
    """A resource's history: every timer's audit entries, oldest first."""
    if resource_type not in RESOURCE_TYPES:
        fail(f"TYPE {resource_type!r}: not one of {', '.join(RESOURCE_TYPES)}")
    timer_store = store_or_exit(store, settings_or_exit())
    resource_id = resource_or_exit(timer_store, resource_type, resource_id, cloud)
    timers = timer_store.timers_for(resource_type, resource_id)
    entries = sorted(((e, t) for t in timers for e in t.history), key=lambda et: et[0].at)
    rows = [
        {"at": stamp(e.at), "rule": t.rule, "what": e.what, "outcome": e.outcome, **e.detail}
        for e, t in entries
    ]
    if json_out:
        print_json({"timers": [t.model_dump(mode="json") for t in timers], "history": rows})
        return
    view = view_of(fmt, column, long)
    emit(rows, AUDIT_COLUMNS, f"{resource_type} {resource_id}", view)
    if view.fmt is Format.table:
        for t in timers:
            due = f", due {stamp(t.due_at)}" if t.due_at and t.state == "pending" else ""
            held = held_reason(t) if t.state == "pending" else ""
            Console().print(Text(f"{t.rule}: {t.state}{due}" + (f", {held}" if held else "")))


def breaker_status(store: StoreOpt = None, json_out: JsonOpt = False) -> None:
    """Whether destructive actions are blocked, since when and why."""
    state = Breaker(store_or_exit(store, settings_or_exit())).status()
    if json_out:
        print_json(state.__dict__)
        return
    if state.open:
        typer.echo(f"open since {state.opened_at}: {state.reason}")
    else:
        typer.echo(
            "closed"
            + (
                f" (reset {state.reset_at} by {state.reset_by}"
                + (f": {state.reset_reason}" if state.reset_reason else "")
                + ")"
                if state.reset_at
                else ""
            )
        )


def breaker_reset(store: StoreOpt = None) -> None:
    """Close the breaker: destructive actions resume on the next sweep."""
    breaker = Breaker(store_or_exit(store, settings_or_exit()))
    before = breaker.reset(datetime.now(UTC), getpass.getuser())
    typer.echo(f"closed (was {'open: ' + before.reason if before.open else 'closed'})")


def register(app: typer.Typer) -> None:
    """Add the sweeper's commands to ``app``."""
    app.command()(sweep)
    app.command()(plan)
    app.command()(audit)
    breaker = typer.Typer(help="The circuit breaker on destructive actions.", no_args_is_help=True)
    breaker.command("status")(breaker_status)
    breaker.command("reset")(breaker_reset)
    app.add_typer(breaker, name="breaker")
