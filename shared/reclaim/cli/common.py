"""Helpers the commands share: reading event files, failing cleanly, printing."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import typer
from pydantic import ValidationError

from reclaim.settings import Settings, load_settings
from reclaim.store import DynamoTimerStore, StoreError, open_store
from reclaim.wire import parse_timestamp


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line error on stderr and exit with ``code`` (no traceback)."""
    typer.echo(f"reclaim: error: {message}", err=True)
    raise typer.Exit(code)


def read_event_file(path: Path) -> list[Any]:
    """The notifications in a file: one JSON object, or a JSON array of them in order."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        fail(f"{path}: cannot read ({exc.strerror})")
    except UnicodeDecodeError:
        fail(f"{path}: not UTF-8 text")
    except json.JSONDecodeError as exc:
        fail(f"{path}: not JSON (line {exc.lineno} column {exc.colno}: {exc.msg})")
    return data if isinstance(data, list) else [data]


def event_files(paths: list[Path]) -> Iterator[tuple[Path, Any]]:
    """Every notification of every file (directories: their ``*.json`` in name order)."""
    for path in paths:
        files = sorted(path.rglob("*.json")) if path.is_dir() else [path]
        for f in files:
            for body in read_event_file(f):
                yield f, body


def print_json(data: Any) -> None:
    """Write ``data`` to stdout as indented JSON."""
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def settings_or_exit() -> Settings:
    """reclaim's settings; a bad config file or variable exits 2 with one line saying which."""
    try:
        return load_settings()
    except ValidationError as exc:
        fail("settings: " + "; ".join(_problem(e) for e in exc.errors()))
    except Exception as exc:
        fail(f"settings: {exc}".replace("\n", " "))


def _problem(error: Any) -> str:
    """One pydantic error as ``policy.shelve_after: <what is wrong> (got 14)``."""
    where = ".".join(str(part) for part in error.get("loc", ()))
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    got = error.get("input")
    shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
    return f"{where or 'settings'}: {message}{shown}"


def store_or_exit(url: str | None, settings: Settings, *, create: bool = False) -> DynamoTimerStore:
    """The timer store at ``url`` (default: the settings'); a bad URL or endpoint exits 2.

    Only commands that fill the store (``create``: listen, run, replay, reconcile, mailer)
    make its table when it is missing; the others refuse a missing table, since a mistyped
    table name would otherwise read as a store with nothing due. The embedded ``memory://``
    store always starts empty.
    """
    target = url or settings.store_url
    try:
        if create or target.startswith("memory:"):
            return open_store(target)
        store = open_store(target, create=False)
        store.require_table()
        return store
    except (StoreError, ValueError, FileNotFoundError) as exc:
        fail(f"store: {exc}")


def instant_or_exit(text: str | None, option: str = "--now") -> datetime:
    """An ISO-8601 time from an option (UTC when it names no zone), or now when absent."""
    if not text:
        return datetime.now(UTC)
    try:
        return parse_timestamp(text)
    except ValueError:
        fail(f"{option} {text!r}: not an ISO 8601 time")


def printable(text: str) -> str:
    """``text`` safe on a terminal: control and non-ASCII characters escaped as in JSON."""
    return json.dumps(text, ensure_ascii=True)[1:-1]


def unreadable_note(store: DynamoTimerStore, json_out: bool = False) -> None:
    """Say how many stored items the command's reads skipped because they do not decode:
    a line after the output, or on stderr beside JSON. Nothing when there were none."""
    keys: Sequence[str] = [u.key for u in store.unreadable()]
    if not keys:
        return
    shown = ", ".join(printable(k) for k in keys[:5]) + (", ..." if len(keys) > 5 else "")
    line = (
        f"{len(keys)} stored item(s) unreadable, skipped: {shown} (reclaim store quarantine list)"
    )
    typer.echo(f"reclaim: warning: {line}" if json_out else line, err=json_out)
