"""Which mails went out: one record per (notice, address) in the timer table.

Records live under their own partition keys (``pk = mail#<notice_id>``, ``sk = <address>``)
with no due-index attributes, so the sweeper never sees them; they expire by the table's TTL.
A record is written only after the SMTP server accepted the mail, and read before sending.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from reclaim.store import DynamoTimerStore
from reclaim.store.items import TableItems

#: How long a record is kept: longer than any redelivery or republication can come late.
RETENTION = timedelta(days=400)


def _key(notice_id: str, address: str) -> dict[str, Any]:
    return {"pk": {"S": f"mail#{notice_id}"}, "sk": {"S": address.lower()}}


class MailLedger(TableItems):
    """Reads and writes mail records with the store's client."""

    what = "mail ledger"

    def __init__(self, store: DynamoTimerStore) -> None:
        super().__init__(store.client, store.table)

    def sent(self, notice_id: str, address: str) -> bool:
        """Whether the mail of ``notice_id`` to ``address`` was accepted already."""
        item = self._call("get_item", Key=_key(notice_id, address), ConsistentRead=True)
        return "Item" in item

    def record(
        self, notice_id: str, address: str, at: datetime, *, kind: str, outcome: str
    ) -> None:
        """Remember that the mail went out (``outcome`` ``sent``, or ``refused`` for good)."""
        self._call(
            "put_item",
            Item={
                **_key(notice_id, address),
                "kind": {"S": kind},
                "outcome": {"S": outcome},
                "at": {"S": at.isoformat()},
                "expires_at": {"N": str(int((at + RETENTION).timestamp()))},
            },
        )
