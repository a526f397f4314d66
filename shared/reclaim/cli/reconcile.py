"""``reclaim reconcile``: rebuild the timers from the cloud's state and report the drift."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from reclaim.cli.common import fail, instant_or_exit, print_json, settings_or_exit, store_or_exit
from reclaim.durations import parse_duration
from reclaim.reconcile.cloud import ListingError
from reclaim.reconcile.engine import ReconcileReport, reconcile
from reclaim.settings import ReconcileSettings
from reclaim.store import StoreError


def _print_report(report: ReconcileReport, console: Console) -> None:
    verb = "would change" if report.dry_run else "changed"
    console.print(
        f"{report.servers} servers, {report.images} images and {report.projects} projects"
        + (
            f" ({report.allocations} with {report.allocation_property})"
            if report.allocation_property
            else ""
        )
        + " read, "
        f"{report.drift} timers {verb}"
        + (f", {report.skipped} skipped (unreadable)" if report.skipped else "")
        + (" (dry run: nothing written)" if report.dry_run else "")
    )
    if report.grace_until is not None and not report.first_reconcile:
        would = "would be" if report.dry_run else "are"
        console.print(
            f"--first-install: actions due sooner {would} restated to fall due no earlier "
            f"than {report.grace_until.isoformat().replace('+00:00', 'Z')}, their notices first",
            soft_wrap=True,
        )
    for warning in report.warnings():
        console.print(f"[yellow]{escape(warning)}[/]", soft_wrap=True)
    counts = Table(title="timers by rule")
    for col in ("rule", "created", "cancelled", "moved", "unchanged"):
        counts.add_column(col, justify="left" if col == "rule" else "right")
    for rule, n in report.by_rule().items():
        counts.add_row(
            rule, str(n["create"]), str(n["cancel"]), str(n["move"]), str(n["unchanged"])
        )
    console.print(counts)
    if report.rows:
        drift = Table(title="drift")
        for col in ("resource", "project", "rule", "change", "due (store)", "due (cloud)", "why"):
            drift.add_column(col)
        for r in report.rows:
            drift.add_row(
                f"{r.resource_type} {r.resource_id}",
                r.project_id or "",
                r.rule,
                r.change,
                r.due_before.strftime("%Y-%m-%d %H:%M") if r.due_before else "-",
                r.due_after.strftime("%Y-%m-%d %H:%M") if r.due_after else "-",
                r.reason,
            )
        console.print(drift)
        if report.rows_dropped:
            console.print(f"... and {report.rows_dropped} more rows (use --json --max-rows N)")


def reconcile_command(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Compute and report the drift; write nothing.")
    ] = False,
    project: Annotated[
        str | None,
        typer.Option(
            "--project", help="Only this project: its servers, images, allocation and timers."
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
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
    max_rows: Annotated[int, typer.Option("--max-rows", help="Drift rows to show.")] = 1000,
) -> None:
    """Compare the timers with the servers, images and allocations; create missing, cancel stale.

    The first reconcile of a store (a new installation) applies the first-install grace by
    itself (reconcile.first_install_grace); a complete one of the whole cloud records that
    the store has been reconciled, and later reconciles are plain ones.
    """
    settings = settings_or_exit()
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
    import openstack

    try:
        conn: Any = openstack.connect(cloud=cloud or os.environ.get("OS_CLOUD"))
    except Exception as exc:
        fail(f"cloud: {exc}".replace("\n", " "))
    err = Console(stderr=True)
    with Progress(
        SpinnerColumn(),
        TextColumn("reconciling servers, images and projects"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
        disable=as_json or not err.is_terminal,
    ) as bar:
        task = bar.add_task("servers", total=None)
        try:
            report = reconcile(
                conn,
                store,
                settings,
                instant_or_exit(now),
                project=project,
                dry_run=dry_run,
                first_install=grace_td if first_install else None,
                progress=lambda n: bar.advance(task, n),
                max_rows=max_rows,
            )
        except ListingError as exc:
            fail(f"cloud: {exc}")
        except StoreError as exc:
            fail(f"store: {exc}")
    if as_json:
        print_json(report.as_json())
    else:
        _print_report(report, Console())


def register(app: typer.Typer) -> None:
    """Add ``reclaim reconcile`` to ``app``."""
    app.command("reconcile")(reconcile_command)
