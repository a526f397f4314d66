"""The pure pipeline's commands: ``invoke``, ``replay``, ``timers list``, ``demo``."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from reclaim import routes
from reclaim.cli.common import event_files, fail, print_json
from reclaim.commands import TimerCommand
from reclaim.settings import Settings, load_settings
from reclaim.store import StoreError, open_store
from reclaim.store.port import TimerStore
from reclaim.views import pending_rows, rows_table
from reclaim.wire import ParseError, parse_timestamp

EVENTS_DIR = Path(__file__).resolve().parents[3] / "events"

FilesArg = Annotated[list[Path], typer.Argument(help="Notification files (JSON object or array).")]
StoreOpt = Annotated[
    str | None,
    typer.Option("--store", help="Timer store URL (default: RECLAIM_STORE_URL or memory://)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def _settings() -> Settings:
    try:
        return load_settings()
    except Exception as exc:  # a bad config file or variable: say which, no traceback
        fail(f"settings: {exc}".replace("\n", " "))


def _commands(files: list[Path], settings: Settings) -> list[TimerCommand]:
    out: list[TimerCommand] = []
    for path, body in event_files(files):
        try:
            out.extend(routes.commands_for(body, settings.policy))
        except ParseError as exc:
            fail(f"{path}: {exc}")
    return out


def _open(url: str | None, settings: Settings) -> TimerStore:
    try:
        return open_store(url or settings.store_url)
    except (StoreError, ValueError, FileNotFoundError) as exc:
        fail(f"store: {exc}")


def invoke(
    files: FilesArg,
    lambda_function: Annotated[
        str | None,
        typer.Option(
            "--lambda",
            help="Run this function's real lambda_handler on Lambda event files instead "
            "(moto for the table).",
        ),
    ] = None,
    store: StoreOpt = None,
) -> None:
    """Parse each file, run the routed policy handler, print all commands as one JSON array.

    Pure: no store, no bus, no cloud. Unknown event types yield no commands.
    """
    if lambda_function is not None:
        from reclaim.cli.serverless import invoke_lambda

        invoke_lambda(lambda_function, files, store)
        return
    settings = _settings()
    print_json([c.as_json() for c in _commands(files, settings)])


def replay(
    files: FilesArg,
    store: Annotated[
        str | None,
        typer.Option("--store", help="Timer store URL (default: a fresh embedded store)."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Deliver files in order through parse, policy and store; print the pending timers."""
    settings = _settings()
    commands = _commands(files, settings)
    timer_store = _open(store or f"memory://replay-{uuid.uuid4().hex[:12]}", settings)
    try:
        timer_store.apply(commands)
        rows = pending_rows(timer_store.pending())
    except StoreError as exc:
        fail(f"store: {exc}")
    _show(rows, json_out, "Pending timers")


def timers_list(
    store: StoreOpt = None,
    due_before: Annotated[
        str | None, typer.Option("--due-before", help="Only what is due by this ISO-8601 time.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """List the pending timers (actions and notices) of a store, in due order."""
    settings = _settings()
    when: datetime | None = None
    if due_before:
        try:
            when = parse_timestamp(due_before)
        except ValueError as exc:
            fail(f"--due-before: {exc}")
    timer_store = _open(store, settings)
    try:
        rows = pending_rows(timer_store.pending(when), when)
    except StoreError as exc:
        fail(f"store: {exc}")
    _show(rows, json_out, "Pending timers")


def demo(json_out: JsonOpt = False) -> None:
    """Replay the sample stream in events/streams into a fresh embedded store and show it."""
    stream = sorted((EVENTS_DIR / "streams").glob("*.json"))
    if not stream:
        fail(f"no sample stream under {EVENTS_DIR / 'streams'}")
    settings = _settings()
    timer_store = open_store("memory://reclaim-demo")
    console = Console()
    for _path, body in event_files(stream):
        notification = routes.parse(body)
        if notification is None:
            continue
        commands = routes.decide(notification, settings.policy)
        timer_store.apply(commands)
        if not json_out:
            what = (
                ", ".join(sorted({f"{c.op} {c.action}" for c in commands if c.action != "notify"}))
                or "no change"
            )
            console.print(
                f"[dim]{notification.timestamp:%Y-%m-%d %H:%M}[/] [bold]{notification.event_type}[/] -> {what}"
            )
    _show(pending_rows(timer_store.pending()), json_out, "Pending timers after the stream")


def _show(rows: list[dict[str, Any]], json_out: bool, title: str) -> None:
    if json_out:
        print_json(rows)
    else:
        Console().print(rows_table(rows, title))


def register(app: typer.Typer) -> None:
    """Add the pure-pipeline commands to ``app``."""
    app.command()(invoke)
    app.command()(replay)
    app.command()(demo)
    timers = typer.Typer(help="Inspect the timer store.", no_args_is_help=True)
    timers.command("list")(timers_list)
    app.add_typer(timers, name="timers")
