"""Which notices reached someone: one record per (notice, address) in the timer table.

Records live under their own partition keys (``pk = mail#<notice_id>``, ``sk = <address>``)
with no due-index attributes, so the due scan never sees them; they expire by the table's
TTL. A record is written only after the SMTP server accepted the mail, and read before
sending.

The same partition holds acknowledgements (``sk = ack#<consumer>``, ``outcome =
acknowledged``): a cloud whose own consumer reads the notice stream and tells people itself
records with ``reclaim notices ack NOTICE_ID --consumer NAME`` that a notice reached them.
The sweeper counts a notice as given from its earliest accepted mail or acknowledgement
(:meth:`MailLedger.first_delivery`), never from its publication.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from reclaim.store import DynamoTimerStore
from reclaim.store.items import TableItems

#: How long a record is kept: longer than any redelivery or republication can come late.
RETENTION = timedelta(days=400)


#: The sort key prefix of an acknowledgement (an address always holds an ``@``, never this).
ACK_PREFIX = "ack#"
#: The outcome of an acknowledgement record.
ACKNOWLEDGED = "acknowledged"


def _key(notice_id: str, address: str) -> dict[str, Any]:
    return {"pk": {"S": f"mail#{notice_id}"}, "sk": {"S": address.lower()}}


def _at(item: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(item["at"]["S"])
    except (KeyError, ValueError):
        return None


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

    def acknowledge(self, notice_id: str, consumer: str, at: datetime) -> bool:
        """Record that ``consumer`` delivered ``notice_id`` to its people at ``at``; False when
        that consumer had acknowledged it already (the first acknowledgement is kept)."""
        return self._put_if(
            Item={
                **_key(notice_id, ACK_PREFIX + consumer),
                "kind": {"S": "ack"},
                "outcome": {"S": ACKNOWLEDGED},
                "at": {"S": at.isoformat()},
                "expires_at": {"N": str(int((at + RETENTION).timestamp()))},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )

    def first_delivery(self, notice_ids: Iterable[str]) -> datetime | None:
        """When the first of these notices reached someone: its earliest mail the SMTP server
        accepted (alone, or in a digest that went out) or acknowledgement; None if none did."""
        times: list[datetime] = []
        for nid in notice_ids:
            pages = self._pages(nid)
            for item in pages:
                outcome = item.get("outcome", {}).get("S", "")
                at = _at(item)
                if at is None:
                    continue
                digest = outcome.startswith("digest ")
                if outcome in ("sent", ACKNOWLEDGED) or (
                    digest and self._digest_sent(outcome.split(" ", 1)[1], item["sk"]["S"])
                ):
                    times.append(at)
        return min(times, default=None)

    def _pages(self, notice_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"mail#{notice_id}"}},
            "ConsistentRead": True,
        }
        while True:
            page = self._call("query", **kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _digest_sent(self, digest_id: str, address: str) -> bool:
        item = self._call("get_item", Key=_key(digest_id, address), ConsistentRead=True)
        outcome: str = item.get("Item", {}).get("outcome", {}).get("S", "")
        return outcome == "sent"
