"""Helpers the commands share: reading event files, failing cleanly, printing."""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

import typer

from reclaim.settings import Settings, describe_error, load_settings
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
    except RecursionError:
        fail(f"{path}: not JSON reclaim reads (nested too deeply)")
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
    """reclaim's settings; a bad config file or variable exits 2 with one line saying which
    (no secret in it: :func:`reclaim.settings.describe_error`)."""
    try:
        return load_settings()
    except Exception as exc:
        fail(f"settings: {describe_error(exc)}")


def cloud_or_exit(entry: str | None, setting: str | None = None) -> Any:
    """An openstacksdk connection to the clouds.yaml ``entry`` (None: ``$OS_CLOUD``, else the
    ``OS_*`` variables); one that cannot be made exits 2 in one line saying how to name a
    cloud: OS_CLOUD, --cloud, or the command's ``setting``."""
    import openstack

    name = entry or os.environ.get("OS_CLOUD") or None
    try:
        return openstack.connect(cloud=name)
    except Exception as exc:
        reason = str(exc).replace("\n", " ")
        if name is None:
            also = f", or set {setting}" if setting else ""
            fail(
                f"cloud: no cloud named: set OS_CLOUD to a clouds.yaml entry, give --cloud"
                f"{also} (openstacksdk: {reason})"
            )
        fail(f"cloud {name!r}: {reason}")


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


def instant_or_exit(
    text: str | None, option: str = "--now", absent: str = "for the real clock"
) -> datetime:
    """The time an option names (see :func:`clock_or_exit`), or now when it is absent."""
    return clock_or_exit(text, option, absent)()


def clock_or_exit(
    text: str | None, option: str = "--now", absent: str = "for the real clock"
) -> Callable[[], datetime]:
    """The clock an option names: absent, the real clock; an ISO 8601 time (UTC when it
    names no zone), the real clock moved to read that time now; a URL, the clock it serves
    as text (the simulated cloud's ``/_sim/clock``), read at every call.

    Empty or unreadable exits 2 in one line: ``--now "$(curl ...)"`` after a failed curl
    must not mean the real clock.
    """
    if text is None:
        return lambda: datetime.now(UTC)
    if not text.strip():
        fail(
            f"{option} is empty: give an ISO 8601 time (2026-03-08T09:01:19Z) or a clock URL "
            f"(http://127.0.0.1:PORT/_sim/clock), or leave {option} out {absent}"
        )
    if text.startswith(("http://", "https://")):
        url = _clock_url(text)
        try:
            _read_clock(url)
        except (OSError, ValueError) as exc:
            fail(f"{option} {text}: cannot read the clock there ({exc})")
        return lambda: _read_clock(url)
    try:
        then = parse_timestamp(text)
    except ValueError:
        fail(f"{option} {text!r}: not an ISO 8601 time (e.g. 2026-03-08T09:01:19Z) nor a URL")
    offset = then - datetime.now(UTC)
    return lambda: datetime.now(UTC) + offset


def _clock_url(text: str) -> str:
    """The simulated cloud's clock as text, from its base URL or the clock's own."""
    parts = urlsplit(text)
    path = parts.path if parts.path not in ("", "/") else "/_sim/clock"
    query = (
        parts.query
        if "format=" in parts.query
        else "&".join(filter(None, [parts.query, "format=text"]))
    )
    return urlunsplit((parts.scheme, parts.netloc, path, query, ""))


def _read_clock(url: str) -> datetime:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return parse_timestamp(answer.read(100).decode("ascii", "replace").strip())


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
    if json_out:
        typer.echo(f"reclaim: warning: {line}", err=True)
    else:  # wrapped to the terminal, as the table above it
        from rich.console import Console
        from rich.text import Text

        Console().print(Text(line))
