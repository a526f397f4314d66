"""The pure pipeline's commands: ``invoke``, ``replay``, ``timers list``, ``demo``."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from reclaim import routes
from reclaim.cli.common import (
    event_files,
    fail,
    instant_or_exit,
    print_json,
    settings_or_exit,
    store_or_exit,
    unreadable_note,
)
from reclaim.cli.output import Column, ColumnOpt, Format, FormatOpt, LongOpt, emit, view_of
from reclaim.cli.progress import Reporter
from reclaim.cli.resolve import CloudOpt, project_or_exit
from reclaim.commands import TimerCommand
from reclaim.settings import Settings
from reclaim.store import StoreError
from reclaim.views import pending_rows, stamp
from reclaim.wire import ParseError

FilesArg = Annotated[list[Path], typer.Argument(help="Notification files (JSON object or array).")]
StoreOpt = Annotated[
    str | None,
    typer.Option("--store", help="Timer store URL (default: RECLAIM_STORE_URL or memory://)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines (-f json).")]
#: Notifications ``replay`` stores at a time (as the listener's batches), saying how far
#: it has got between them.
REPLAY_BATCH = 1000

#: The rows of ``timers list`` and ``replay`` (:func:`reclaim.views.pending_rows`).
TIMER_COLUMNS = (
    Column("due_at", "due", kind="time"),
    Column("what"),
    Column("action", table=False),
    Column("notice", table=False),
    Column("resource_type", "type"),
    Column("resource_id", "id", kind="id"),
    Column("project_id", "project", kind="id"),
    Column("user_id", "user", kind="id", table=False),
    Column("rule", table=False),
    Column("since", kind="time", table=False),
)


def _delivered(files: list[Path]) -> list[tuple[Path, bytes]]:
    """Each notification of the files as the bytes a broker would carry (so that its size is
    checked as the listener's is), with the file it came from."""
    return [(path, _encoded(body)) for path, body in event_files(files)]


def _encoded(body: Any) -> bytes:
    try:
        return orjson.dumps(body)
    except TypeError:  # an integer past 64 bits: the standard library writes any JSON
        return json.dumps(body).encode("utf-8")


def _commands(files: list[Path], settings: Settings) -> list[TimerCommand]:
    out: list[TimerCommand] = []
    bounds = settings.ingest.bounds(datetime.now(UTC))  # the files are received now
    for path, body in _delivered(files):
        try:
            out.extend(routes.commands_for(body, settings.policy, bounds))
        except ParseError as exc:
            fail(f"{path}: {exc}")
    return out


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
    settings = settings_or_exit()
    print_json([c.as_json() for c in _commands(files, settings)])


def replay(
    files: FilesArg,
    store: Annotated[
        str | None,
        typer.Option("--store", help="Timer store URL (default: a fresh embedded store)."),
    ] = None,
    fmt: FormatOpt = Format.table,
    column: ColumnOpt = None,
    long: LongOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Deliver files in order through parse, policy and store; print the pending timers.

    As the listener does: what cannot be used (a malformed notification, dates outside the
    event-time window) is kept as a dead letter in the store and named on stderr, one line
    each, and the command exits 1; the rest is stored.
    """
    from reclaim.bus import log
    from reclaim.bus.pipeline import Pipeline
    from reclaim.deadletters import DeadLetter, DeadLetterStore

    settings = settings_or_exit()
    delivered = _delivered(files)
    timer_store = store_or_exit(
        store or f"memory://replay-{uuid.uuid4().hex[:12]}", settings, create=True
    )
    pipeline = Pipeline(
        timer_store, DeadLetterStore.beside(timer_store), settings.policy,
        apply_threads=1, handler_retries=0, ingest=settings.ingest,
    )  # fmt: skip
    letters: list[tuple[int, DeadLetter]] = []
    log.configure("INFO")  # the progress off a terminal: JSON lines
    try:
        with Reporter("replay", "notifications stored") as progress:
            for start in range(0, len(delivered), REPLAY_BATCH):
                outcome = pipeline.process([b for _, b in delivered[start : start + REPLAY_BATCH]])
                letters += [
                    (start + p, letter)
                    for p, letter in zip(
                        outcome.dead_letter_positions, outcome.dead_letters, strict=True
                    )
                ]
                progress.advance(min(REPLAY_BATCH, len(delivered) - start))
        rows = pending_rows(timer_store.pending())
    except StoreError as exc:
        fail(f"store: {exc}")
    finally:
        pipeline.close()
    view = view_of(fmt, column, long, json_out)
    emit(rows, TIMER_COLUMNS, "Pending timers", view)
    unreadable_note(timer_store, view.fmt is not Format.table)
    for position, letter in sorted(letters, key=lambda pl: pl[0]):
        typer.echo(
            f"reclaim: error: {delivered[position][0]}: {letter.reason} (dead letter {letter.id})",
            err=True,
        )
    if letters:
        raise typer.Exit(1)


def timers_list(
    store: StoreOpt = None,
    due_before: Annotated[
        str | None,
        typer.Option("--due-before", help="Only what is due by this ISO 8601 time (or clock URL)."),
    ] = None,
    project: Annotated[
        str | None,
        typer.Option(
            "--project",
            help="Only this project's: its id, a prefix of it, or its name (looked up in "
            "Keystone: --cloud or OS_CLOUD).",
        ),
    ] = None,
    cloud: CloudOpt = None,
    fmt: FormatOpt = Format.table,
    column: ColumnOpt = None,
    long: LongOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """List the pending timers (actions and notices) of a store, in due order."""
    settings = settings_or_exit()
    when = None if due_before is None else instant_or_exit(due_before, "--due-before", "for all")
    timer_store = store_or_exit(store, settings)
    if project is not None:
        project = project_or_exit(timer_store, project, cloud)
    try:
        timers = [t for t in timer_store.pending(when) if project in (None, t.project_id)]
        rows = pending_rows(timers, when)
    except StoreError as exc:
        fail(f"store: {exc}")
    view = view_of(fmt, column, long, json_out)
    emit(rows, TIMER_COLUMNS, "Pending timers", view)
    unreadable_note(timer_store, view.fmt is not Format.table)


def demo(json_out: JsonOpt = False) -> None:
    """Play the whole policy on embedded parts and print the timeline and the final state.

    A simulated cloud (served over HTTP on 127.0.0.1), an in-memory bus, an in-process
    store, the real mailer and an SMTP server on 127.0.0.1, and a simulated clock: the
    policy's six stories (servers shelved, then deleted; an allocation's end and a forged
    one; an image owner removed; an end-of-life image; a database port open to the world),
    one timeline in time order, each line tagged with its story.
    """
    from reclaim.demo import STORIES, running

    started = time.monotonic()
    with running(settings_or_exit()) as game:
        story = game.play()
    if json_out:
        print_json(
            {
                "stories": {str(n): text for n, text in STORIES.items()},
                "timeline": [line.as_json() for line in story.lines],
                "servers": story.servers,
                "deleted": story.deleted,
                "images": story.images,
                "mails": story.mails,
                "alerts": story.alerts,
                "links": {
                    str(n): {"mail": who, "link": link}
                    for n, (who, link) in sorted(story.links.items())
                },
            }
        )
        return
    console = Console()
    styles = {
        "event": "bold", "notice": "cyan", "action": "green", "skip": "yellow", "hold": "magenta",
    }  # fmt: skip
    console.print("The policy's six stories on one timeline (simulated time; each line's story):")
    for n, text in STORIES.items():
        console.print(f"  {n} {text}", soft_wrap=True)
    for line in story.lines:
        console.print(
            f"[dim]{stamp(line.at)}[/] {line.story} [{styles.get(line.kind, '')}]{line.kind:6}[/] "
            f"{escape(line.text)}",
            soft_wrap=True,
        )
    table = Table(title="The cloud afterwards", title_justify="left")
    for col in ("server", "id", "project", "status"):
        table.add_column(col, no_wrap=col == "id")
    for row in sorted(story.servers, key=lambda r: (r["project"], r["name"])):
        table.add_row(row["name"], row["id"], row["project"], row["status"])
    console.print(table)
    if story.deleted:
        console.print(f"servers deleted: {', '.join(story.deleted)}")
    images = ", ".join(f"{i['name']} ({i['visibility']})" for i in story.images) or "none"
    console.print(f"images left: {images}")
    console.print(
        f"mails accepted by the SMTP server: {story.mails} (operator alerts: {story.alerts})"
    )
    console.print(
        "each mail links to its resource's page on `reclaim web` (web.base_url, signed with "
        "web.secret_key for its recipient); each story's first (full links: --json):",
        soft_wrap=True,
    )
    for n, (who, link) in sorted(story.links.items()):
        # the token signs the resource's id, random for some: left out to keep this steady
        console.print(f"  {n} {escape(who)}: {link.split('/l/')[0]}/l/…", soft_wrap=True)
    console.print(f"[dim]played in {time.monotonic() - started:.1f} s of wall time[/]")


def register(app: typer.Typer) -> None:
    """Add the pure-pipeline commands to ``app``."""
    app.command()(invoke)
    app.command()(replay)
    app.command()(demo)
    timers = typer.Typer(help="Inspect the timer store.", no_args_is_help=True)
    timers.command("list")(timers_list)
    app.add_typer(timers, name="timers")
