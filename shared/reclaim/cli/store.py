"""The store's commands: ``store quarantine list|show|drop``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from reclaim.cli.common import fail, printable, settings_or_exit, store_or_exit
from reclaim.cli.output import Column, ColumnOpt, Format, FormatOpt, LongOpt, emit, view_of
from reclaim.cli.resolve import unique_match
from reclaim.store import StoreError
from reclaim.store.quarantine import Quarantine, Quarantined, examine, safe_view
from reclaim.views import stamp
from reclaim.wire import parse_timestamp

StoreOpt = Annotated[
    str | None,
    typer.Option("--store", help="Timer store URL (default: RECLAIM_STORE_URL or memory://)."),
]
KeyArg = Annotated[
    str,
    typer.Argument(
        help="The item's key, <resource_type>#<resource_id>, or its resource id, or a prefix "
        "of either (as listed)."
    ),
]


def _quarantine(store: str | None) -> Quarantine:
    return Quarantine.beside(store_or_exit(store, settings_or_exit()))


def _found(quarantine: Quarantine, key: str) -> Quarantined:
    """The unreadable item under ``key``, or the one whose key, or whose resource id, starts
    with it (as listed); exits 1 when there is none or it reads fine."""
    try:
        item = quarantine.get(key)
        if item is None:
            keys = [f.key for f in quarantine.scan()]
            whole = unique_match(key, keys, "stored item")
            if whole is None:
                by_id = {k.partition("#")[2]: k for k in keys}
                whole = by_id.get(unique_match(key, by_id, "stored item") or "")
            item = quarantine.get(whole) if whole is not None else None
    except StoreError as exc:
        fail(f"store: {exc}")
    if item is None:
        fail(f"no stored item {printable(key)}", code=1)
    found = examine(item)
    if found is None:
        fail(f"{printable(key)} reads fine: it is not quarantined", code=1)
    return found


def _describe(found: Quarantined) -> None:
    typer.echo(f"key:      {printable(found.key)}")
    typer.echo(f"problem:  {printable(found.reason)}")
    typer.echo(f"reported: {found.reported_at or 'not yet (the next sweep alerts operators)'}")
    typer.echo("item (secrets removed, long texts cut):")
    typer.echo(safe_view(found.item))


QUARANTINE_COLUMNS = (
    Column("resource_type", "type"),
    Column("resource_id", "id", kind="id"),
    Column("key", kind="id", table=False),
    Column("problem"),
    Column("reported_at", "reported", kind="time"),
)


def _parts(key: str) -> dict[str, str]:
    """A key's resource type and id (``server#0b8e...``)."""
    rtype, _, rid = key.partition("#")
    return {"resource_type": rtype, "resource_id": rid}


def _when(text: str | None) -> str | None:
    """A stored time in the one format (as stored when it does not parse)."""
    try:
        return stamp(parse_timestamp(text)) if text else None
    except ValueError:
        return text


def quarantine_list(
    store: StoreOpt = None,
    fmt: FormatOpt = Format.table,
    column: ColumnOpt = None,
    long: LongOpt = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Stored items that do not decode (every read skips them). Scans the whole table."""
    quarantine = _quarantine(store)
    try:
        found = list(quarantine.scan())
    except StoreError as exc:
        fail(f"store: {exc}")
    view = view_of(fmt, column, long, json_out)
    if view.fmt is not Format.table:
        rows = [
            {**_parts(f.key), "key": f.key, "problem": f.reason,
             "reported_at": _when(f.reported_at)}
            for f in found
        ]  # fmt: skip
        emit(rows, QUARANTINE_COLUMNS, "Unreadable items", view)
        return
    rows = [
        {**_parts(printable(f.key)), "key": printable(f.key), "problem": printable(f.reason),
         "reported_at": _when(f.reported_at) or "not reported yet"}
        for f in found
    ]  # fmt: skip
    emit(rows, QUARANTINE_COLUMNS, "Unreadable items", view)
    if found:  # wrapped to the terminal, as the table
        Console().print(
            Text(
                f"{len(found)} unreadable item(s): reclaim store quarantine show KEY to look at "
                "one, drop KEY to remove it (then reclaim reconcile rebuilds its timers from "
                "the cloud)"
            )
        )


def quarantine_show(key: KeyArg, store: StoreOpt = None) -> None:
    """One unreadable item: what is wrong with it and what it holds (secrets removed)."""
    _describe(_found(_quarantine(store), key))


def quarantine_drop(
    key: KeyArg,
    store: StoreOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete one unreadable item from the table, after showing it (asks unless --yes).

    Its resource's timers are gone with it: run ``reclaim reconcile`` to rebuild them from
    the cloud. An item that reads fine, or changed since it was shown, is left alone.
    """
    quarantine = _quarantine(store)
    found = _found(quarantine, key)
    _describe(found)
    if not yes:
        try:
            confirmed = typer.confirm(f"Delete {printable(found.key)}?", default=False)
        except typer.Abort:  # no answer (stdin closed) is no
            confirmed = False
        if not confirmed:
            typer.echo("")
            fail("not dropped (confirm, or pass --yes)", code=1)
    try:
        dropped = quarantine.drop(found)
    except StoreError as exc:
        fail(f"store: {exc}")
    if not dropped:
        fail(f"{printable(found.key)} changed since it was read: not dropped, look again", 1)
    typer.echo(
        f"dropped {printable(found.key)}; run reclaim reconcile to rebuild its resource's timers"
    )


def register(app: typer.Typer) -> None:
    """Add the store's commands to ``app``."""
    store = typer.Typer(help="Look after the timer store.", no_args_is_help=True)
    quarantine = typer.Typer(
        help="Stored items that do not decode: every read skips them.", no_args_is_help=True
    )
    quarantine.command("list")(quarantine_list)
    quarantine.command("show")(quarantine_show)
    quarantine.command("drop")(quarantine_drop)
    store.add_typer(quarantine, name="quarantine")
    app.add_typer(store, name="store")
