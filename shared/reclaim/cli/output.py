"""How every listing command prints its rows, as the openstack client does.

``-f table|json|yaml|value|csv`` chooses the form, ``-c COLUMN`` (repeatable) the columns,
``--long`` shows ids in full and every column in the table. A command describes its rows
once (:class:`Column`) and calls :func:`emit`::

    COLUMNS = (Column("due_at", "due", kind="time"), Column("resource_id", "id", kind="id"))

    def listing(fmt: FormatOpt = Format.table, column: ColumnOpt = None,
                long: LongOpt = False) -> None:
        emit(rows, COLUMNS, "Pending timers", view_of(fmt, column, long))

A command without those options prints its table with ``emit(rows, COLUMNS, title,
View(), console)``. The table fits the terminal (``COLUMNS``; 80 when not a terminal):
text wraps, times and ids never do; when the table would not fit with ids in full, an id
is shortened to the shortest prefix unique among the rows shown (8 characters at least),
which every command taking that id accepts. ``-f value``, ``csv``, ``json`` and ``yaml``
always carry ids in full. Times are strings already (see :func:`reclaim.views.stamp`).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

import typer
import yaml
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from reclaim.cli.common import fail

#: An id in a table is shortened to no fewer characters than this (git's default is 7).
SHORT_ID = 8
NOTHING = "nothing to show"


class Format(StrEnum):
    """The forms a listing can take."""

    table = "table"
    json = "json"
    yaml = "yaml"
    value = "value"
    csv = "csv"


FormatOpt = Annotated[
    Format,
    typer.Option(
        "-f", "--format", help="Output form: table, json, yaml, value (no headers) or csv."
    ),
]
ColumnOpt = Annotated[
    list[str] | None,
    typer.Option("-c", "--column", help="Show this column (repeat; default: the table's)."),
]
LongOpt = Annotated[bool, typer.Option("--long", help="Ids in full and every column in the table.")]


@dataclass(frozen=True, slots=True)
class Column:
    """One field of a listing's rows: its key, its header, and how the table shows it.

    ``kind``: ``id`` (shortened in the table unless ``--long``; never wrapped), ``time``
    (never wrapped) or ``text`` (wrapped to fit). ``table``: shown in the table by default
    (the others with ``--long`` or ``-c``). ``-c`` takes the key or the header.
    """

    key: str
    header: str = ""
    kind: Literal["text", "id", "time", "count"] = "text"
    table: bool = True

    @property
    def title(self) -> str:
        return self.header or self.key


@dataclass(frozen=True, slots=True)
class View:
    """The output options a user gave: form, columns, ``--long``."""

    fmt: Format = Format.table
    columns: Sequence[str] | None = None
    long: bool = False


def choose(columns: Sequence[Column], view: View) -> list[Column]:
    """The columns to show: ``-c`` in the order given, else the table's (all with --long,
    and in the machine forms json and yaml). An unknown name exits 2 naming the valid ones."""
    if view.columns:
        by_name = {c.key: c for c in columns} | {c.title: c for c in columns}
        unknown = [name for name in view.columns if name not in by_name]
        if unknown:
            valid = ", ".join(c.key for c in columns)
            fail(f"-c {unknown[0]}: no such column (columns: {valid})")
        return list(dict.fromkeys(by_name[name] for name in view.columns))
    if view.long or view.fmt in (Format.json, Format.yaml):
        return list(columns)
    return [c for c in columns if c.table]


def short_ids(ids: Iterable[str], minimum: int = SHORT_ID) -> dict[str, str]:
    """Each id's shortest prefix (of ``minimum`` characters or more) that no other id here
    starts with, as git abbreviates commits. Pure."""
    unique = sorted(set(ids))
    out: dict[str, str] = {}
    for i, full in enumerate(unique):
        length = minimum
        for other in (unique[i - 1] if i else "", unique[i + 1] if i + 1 < len(unique) else ""):
            common = 0
            while common < min(len(full), len(other)) and full[common] == other[common]:
                common += 1
            length = max(length, common + 1)
        out[full] = full if length >= len(full) else full[:length]
    return out


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(_cell(v) for v in value)
    return str(value)


def emit(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[Column],
    title: str,
    view: View,
    console: Console | None = None,
) -> None:
    """Print ``rows`` as ``view`` asks (see the module's docstring)."""
    chosen = choose(columns, view)
    if view.fmt in (Format.json, Format.yaml):
        data = [{c.key: r.get(c.key) for c in chosen} for r in rows]
        if view.fmt is Format.json:
            sys.stdout.write(json.dumps(data, indent=2) + "\n")
        else:
            sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        return
    if view.fmt is Format.value:
        for r in rows:
            sys.stdout.write(" ".join(_cell(r.get(c.key)) for c in chosen) + "\n")
        return
    if view.fmt is Format.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([c.key for c in chosen])
        writer.writerows([_cell(r.get(c.key)) for c in chosen] for r in rows)
        return
    out = console or Console()
    if not rows:
        out.print(Text(f"{title}: {NOTHING}"))
        return
    out.print(table(rows, chosen, title, width=out.width, long=view.long))


#: A text column is squeezed no narrower than its longest word, or this...
TEXT_MIN = 16
#: ... unless the table cannot fit otherwise (its words then fold).
TEXT_FLOOR = 6


def _chrome(columns: int) -> int:
    """The table's own characters on a line: an edge each side, one space of padding and
    one of separator between columns (``box.SIMPLE_HEAD``, padding ``(0, 1, 0, 0)``)."""
    return 2 * columns


def _fit(columns: Sequence[Column], cells: list[list[str]], width: int) -> list[int]:
    """Each column's width: what it needs when the table fits, else ids, times and counts
    whole and the text columns sharing the rest (each at least its longest word or
    :data:`TEXT_MIN`), as far toward what they need as ``width`` allows."""
    lines = [[c.title, *(line for row in cells for line in row[i].splitlines())]
             for i, c in enumerate(columns)]  # fmt: skip
    natural = [max(map(len, col)) for col in lines]
    room = width - _chrome(len(columns))
    if sum(natural) <= room:
        return natural
    least = [
        n if c.kind != "text" else min(n, max(len(c.title), min(TEXT_MIN, _longest_word(col))))
        for c, n, col in zip(columns, natural, lines, strict=True)
    ]
    text = [i for i, c in enumerate(columns) if c.kind == "text"]
    while sum(least) > room and text and max(least[i] for i in text) > TEXT_FLOOR:
        least[max(text, key=lambda i: least[i])] -= 1  # the widest text column gives way
    spare = room - sum(least)
    want = [n - m for n, m in zip(natural, least, strict=True)]
    if spare <= 0 or not sum(want):
        return least
    grant = [spare * w // sum(want) for w in want]
    for i in sorted(range(len(want)), key=lambda i: -want[i])[: spare - sum(grant)]:
        grant[i] += 1
    return [min(n, m + g) for n, m, g in zip(natural, least, grant, strict=True)]


def _longest_word(lines: Iterable[str]) -> int:
    return max((len(word) for line in lines for word in line.split()), default=0)


def table(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[Column],
    title: str,
    *,
    width: int,
    long: bool = False,
) -> Table:
    """The rich table of ``rows`` in ``width`` characters: text wraps, ids and times never
    do; unless ``long``, ids are shortened (:func:`short_ids`) when the table would not fit
    with them whole."""
    cells = [[_cell(r.get(c.key)) for c in columns] for r in rows]
    if not long and sum(_fit(columns, cells, 1 << 16)) + _chrome(len(columns)) > width:
        for i, c in enumerate(columns):
            if c.kind == "id":
                short = short_ids(row[i] for row in cells if row[i])
                for row in cells:
                    row[i] = short.get(row[i], row[i])
    shown = Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0)
    )
    for c, w in zip(columns, _fit(columns, cells, width), strict=True):
        shown.add_column(
            c.title,
            width=w,
            no_wrap=c.kind != "text",
            overflow="fold",
            justify="right" if c.kind == "count" else "left",
        )
    for row in cells:
        shown.add_row(*map(Text, row))
    return shown


def view_of(fmt: Format, column: list[str] | None, long: bool, json_out: bool = False) -> View:
    """The :class:`View` of a command's options (``--json`` is ``-f json``)."""
    return View(Format.json if json_out else fmt, tuple(column or ()), long)
