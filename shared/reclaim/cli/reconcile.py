"""``reclaim reconcile``: rebuild the timers from the cloud's state and report the drift."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from reclaim.bus import log
from reclaim.cli.common import (
    cloud_or_exit,
    fail,
    instant_or_exit,
    print_json,
    settings_or_exit,
    store_or_exit,
)
from reclaim.cli.output import (
    Column,
    ColumnOpt,
    Format,
    FormatOpt,
    LongOpt,
    View,
    emit,
    view_of,
)
from reclaim.cli.progress import Reporter
from reclaim.cli.resolve import project_or_exit
from reclaim.durations import parse_duration
from reclaim.reconcile.cloud import ListingError
from reclaim.reconcile.engine import ReconcileReport, reconcile
from reclaim.settings import ReconcileSettings
from reclaim.store import StoreError
from reclaim.views import stamp

#: The drift rows (:meth:`reclaim.reconcile.engine.DriftRow.as_json`); ``due`` is when
#: the timer falls due now (cancelled: when it would have).
DRIFT_COLUMNS = (
    Column("resource_type", "type"),
    Column("resource_id", "id", kind="id"),
    Column("project_id", "project", kind="id", table=False),
    Column("rule"),
    Column("change"),
    Column("due", kind="time"),
    Column("due_before", "due (store)", kind="time", table=False),
    Column("due_after", "due (cloud)", kind="time", table=False),
    Column("reason", "why"),
)
RULE_COLUMNS = (
    Column("rule"),
    *(Column(c, kind="count") for c in ("created", "cancelled", "moved", "unchanged")),
)


def drift_rows(report: ReconcileReport) -> list[dict[str, Any]]:
    """The report's drift rows as ``-f`` prints them."""
    rows = []
    for r in report.rows:
        row = r.as_json() | {"due_before": stamp(r.due_before), "due_after": stamp(r.due_after)}
        rows.append(row | {"due": row["due_after"] or row["due_before"]})
    return rows


def _print_report(report: ReconcileReport, console: Console, view: View) -> None:
    verb = "would change" if report.dry_run else "changed"
    allocations = (
        f" ({report.allocations} with {report.allocation_property})"
        if report.allocation_property
        else ""
    )
    console.print(
        f"{report.servers} servers, {report.images} images and {report.projects} projects"
        f"{allocations} read"
    )
    console.print(
        f"{report.drift} timers {verb}"
        + (f", {report.skipped} skipped (unreadable)" if report.skipped else "")
        + ("; dry run: nothing written" if report.dry_run else "")
    )
    if report.grace_until is not None and not report.first_reconcile:
        would = "would be" if report.dry_run else "are"
        console.print(
            f"--first-install: actions due sooner {would} restated to fall due no earlier "
            f"than {stamp(report.grace_until)}, their notices first"
        )
    for warning in report.warnings():
        console.print(Text(warning, style="yellow"))
    counts = [
        {"rule": rule, "created": n["create"], "cancelled": n["cancel"], "moved": n["move"],
         "unchanged": n["unchanged"]}
        for rule, n in report.by_rule().items()
    ]  # fmt: skip
    emit(counts, RULE_COLUMNS, "Timers by rule", View(), console)
    if report.rows:
        emit(drift_rows(report), DRIFT_COLUMNS, "Drift", view, console)
        if report.rows_dropped:
            console.print(f"... and {report.rows_dropped} more rows (use --json --max-rows N)")


def reconcile_command(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Compute and report the drift; write nothing.")
    ] = False,
    project: Annotated[
        str | None,
        typer.Option(
            "--project",
            help="Only this project (its id, a prefix of it, or its name in Keystone): its "
            "servers, images, allocation and timers.",
        ),
    ] = None,
    first_install: Annotated[
        bool,
        typer.Option(
            "--first-install",
            help="No action falls due sooner than the grace from now; notices go first. "
            "The first reconcile of a store does this by itself.",
        ),
    ] = False,
    grace: Annotated[
        str | None,
        typer.Option(
            "--grace",
            help="With --first-install: its grace (default: reconcile.first_install_grace).",
        ),
    ] = None,
    store_url: Annotated[
        str | None,
        typer.Option("--store", help="Timer store URL (default: RECLAIM_STORE_URL or memory://)."),
    ] = None,
    cloud: Annotated[
        str | None, typer.Option("--cloud", help="clouds.yaml entry (default: OS_CLOUD).")
    ] = None,
    now: Annotated[
        str | None,
        typer.Option("--now", help="Reconcile as if it were this time (ISO 8601, UTC if no zone)."),
    ] = None,
    fmt: FormatOpt = Format.table,
    column: ColumnOpt = None,
    long: LongOpt = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="The whole report as one JSON document.")
    ] = False,
    max_rows: Annotated[int, typer.Option("--max-rows", help="Drift rows to show.")] = 1000,
) -> None:
    """Compare the timers with the servers, images and allocations; create missing, cancel stale.

    The first reconcile of a store (a new installation) applies the first-install grace by
    itself (reconcile.first_install_grace); a complete one of the whole cloud records that
    the store has been reconciled, and later reconciles are plain ones.
    """
    settings = settings_or_exit()
    when = instant_or_exit(now)
    if grace is not None and not first_install:
        fail(
            "--grace needs --first-install (a store's first reconcile uses "
            "reconcile.first_install_grace)"
        )
    options: ReconcileSettings = settings.reconcile
    try:
        grace_td = parse_duration(grace) if grace else options.first_install_grace
    except ValueError as exc:
        fail(f"--grace: {exc}")
    if first_install and grace_td.total_seconds() <= 0:
        fail("--grace must be positive: notices have to go out before the action")
    store = store_or_exit(store_url, settings, create=True)
    conn = cloud_or_exit(cloud)
    if project is not None:
        project = project_or_exit(store, project, cloud)
    log.configure("INFO")  # what goes wrong, and the progress off a terminal: JSON lines
    with Reporter("reconcile", "servers, images and projects read") as progress:
        try:
            report = reconcile(
                conn,
                store,
                settings,
                when,
                project=project,
                dry_run=dry_run,
                first_install=grace_td if first_install else None,
                progress=progress.advance,
                max_rows=max_rows,
            )
        except ListingError as exc:
            fail(f"cloud: {exc}")
        except StoreError as exc:
            fail(f"store: {exc}")
    view = view_of(fmt, column, long)
    if as_json:
        print_json(report.as_json())
    elif view.fmt is Format.table:
        _print_report(report, Console(), view)
    else:
        emit(drift_rows(report), DRIFT_COLUMNS, "Drift", view)


def register(app: typer.Typer) -> None:
    """Add ``reclaim reconcile`` to ``app``."""
    app.command("reconcile")(reconcile_command)
