"""``reclaim notices ack``: an external consumer records that a notice reached its people."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated

import typer

from reclaim.cli.common import fail, settings_or_exit, store_or_exit
from reclaim.store import StoreError

_CONSUMER = re.compile(r"[A-Za-z0-9._-]{1,64}")


def ack(
    notice_id: Annotated[str, typer.Argument(help="The notice's notice_id (a UUID).")],
    consumer: Annotated[
        str, typer.Option("--consumer", help="Who delivered it (letters, digits, . _ -).")
    ] = "external",
    store: Annotated[
        str | None, typer.Option("--store", help="Timer store URL (default: RECLAIM_STORE_URL).")
    ] = None,
) -> None:
    """Record that a notice reached its people through a consumer of the notice stream.

    The sweeper counts a notice as given from its first accepted mail or acknowledgement; an
    action waits the rule's whole warning period after that. Acknowledge a notice only once
    your consumer really delivered it.
    """
    try:
        nid = str(uuid.UUID(notice_id))
    except ValueError:
        fail(f"{notice_id!r} is not a notice id (the notice_id of a notice payload, a UUID)")
    if not _CONSUMER.fullmatch(consumer):
        fail(f"--consumer {consumer!r}: use 1 to 64 letters, digits, '.', '_' or '-'")
    from reclaim.mailer.ledger import MailLedger

    ledger = MailLedger(store_or_exit(store, settings_or_exit()))
    now = datetime.now(UTC)
    try:
        first = ledger.acknowledge(nid, consumer, now)
    except StoreError as exc:
        fail(f"store: {exc}", 1)
    if first:
        typer.echo(f"acknowledged {nid} for {consumer} at {now.isoformat()}")
    else:
        typer.echo(f"{nid} was already acknowledged by {consumer} (the first time is kept)")


def register(app: typer.Typer) -> None:
    """Add ``notices ack`` to ``app``."""
    notices = typer.Typer(help="Notices given through other channels.", no_args_is_help=True)
    notices.command("ack")(ack)
    app.add_typer(notices, name="notices")
