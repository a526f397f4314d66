"""Whether anything is configured to deliver reclaim's notices, said loudly at start.

``reclaim run``, ``reclaim sweep`` and ``reclaim mailer`` call :func:`warn_at_start` before
they do anything else: a warning that would reach nobody (no operator address and no
fallback contact; or, for the commands that send notices, a store in which no mail was
ever recorded as delivered) is printed as a block on stderr, and logged, at once.

Whether a mail was ever delivered is one item in the timer table (``pk = mail``,
``sk = delivered``) that the mailer stamps on its first accepted mail
(:class:`DeliveryStamp`): reading it costs one read, never a scan of the mail records.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from typing import Any, TextIO

from reclaim.bus.log import emit
from reclaim.mailer.ledger import MailLedger
from reclaim.settings import MailerSettings
from reclaim.store import StoreError
from reclaim.store.items import TableItems

_KEY = {"pk": {"S": "mail"}, "sk": {"S": "delivered"}}


class DeliveryStamp(TableItems):
    """When a mailer (the latest to start) first had a mail accepted, in the timer table."""

    what = "delivery stamp"

    @classmethod
    def beside(cls, ledger: MailLedger) -> DeliveryStamp:
        """The stamp in the table of ``ledger``."""
        return cls(ledger.client, ledger.table)

    def stamp(self, at: datetime) -> None:
        """Record that a mail was accepted at ``at``."""
        self._call("put_item", Item={**_KEY, "at": {"S": at.isoformat()}})

    def last(self) -> datetime | None:
        """The stamped time; None if no mail was ever accepted."""
        item: dict[str, Any] | None = self._call("get_item", Key=_KEY, ConsistentRead=True).get(
            "Item"
        )
        return datetime.fromisoformat(item["at"]["S"]) if item else None


def delivery_problems(mailer: MailerSettings, ledger: MailLedger | None) -> list[str]:
    """What keeps notices from reaching anyone: one sentence each (none: all is well).

    ``ledger``: the store's mail records, for commands that send notices; None for the
    mailer itself, which is the deliverer.
    """
    problems = []
    if not mailer.operators and not mailer.fallback_contact:
        problems.append(
            "no operator address and no fallback contact are configured (mailer.operators, "
            "mailer.fallback_contact): operator alerts, and notices whose people cannot be "
            "found (a deleted project, members without an address), reach nobody"
        )
    if ledger is not None:
        try:
            delivered = DeliveryStamp.beside(ledger).last()
        except StoreError as exc:
            problems.append(f"could not read the mail records of the store: {exc}")
        else:
            if delivered is None:
                problems.append(
                    "no mail has ever been recorded as delivered in this store: is "
                    "`reclaim mailer` (or the Lambda mailer) running against it? Notices "
                    "published now may be read by nobody"
                )
    return problems


def warn_at_start(
    command: str,
    mailer: MailerSettings,
    ledger: MailLedger | None,
    out: TextIO | None = None,
) -> list[str]:
    """Print the :func:`delivery_problems` of ``command`` as a warning block on stderr (and
    log them); returns them."""
    problems = delivery_problems(mailer, ledger)
    if not problems:
        return problems
    stream = out or sys.stderr
    rule = "=" * 78
    lines = [rule, f"WARNING: reclaim {command}: notices may reach nobody", rule]
    lines += [f"- {p}" for p in problems]
    lines += [rule]
    print("\n".join(lines), file=stream, flush=True)
    emit("delivery_unconfigured", logging.WARNING, command=command, problems=problems)
    return problems
