"""Helpers the commands share: reading event files, failing cleanly, printing."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import typer


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
