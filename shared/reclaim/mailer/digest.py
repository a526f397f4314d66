"""The daily digest: people's notices gathered in the timer table, mailed once a day.

With ``digest: true`` a notice for a person is not mailed at once: it is kept as one item
(``pk = digest#<address>``, ``sk = <notice_id>``, the payload and when it arrived) before the
notice is acknowledged. Every address with kept notices is listed under ``pk = digest``, so
the daily pass reads two partitions, never the whole table. Operator alerts are not digested.

At ``digest_hour`` (UTC) each day, the *slot*, one mail per address lists the notices that
arrived up to the slot. Its id derives from (address, slot date), and the order is: check
the ledger for that id (sent already: skip the mail), send, record the id, record each
notice as mailed to the address, delete the kept items. A crash anywhere in that order
repeats the pass at the next check without losing the notices or mailing them twice (as for
single notices, a crash between the server's acceptance and the ledger write re-sends that
one mail, with the same ``Message-ID``); a redelivered notice that was already in a digest
finds its ledger record and is not kept again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from reclaim.mailer.addresses import Person
from reclaim.mailer.ledger import MailLedger
from reclaim.notices import NoticeMessage, parse_notice
from reclaim.store.items import TableItems

#: Partition listing the addresses that have kept notices.
INDEX_PK = "digest"
#: Kept notices (and the index row) expire if never mailed: far longer than any outage.
RETENTION = timedelta(days=60)
_NAMESPACE = uuid.UUID("4c0f6b55-3c2e-4b8e-9a51-5d0c1d7e2a90")


def slot(now: datetime, hour: int) -> datetime:
    """The latest digest time (``hour`` UTC, on the hour) at or before ``now``. Pure."""
    today = datetime.combine(now.date(), time(hour), tzinfo=now.tzinfo)
    return today if now >= today else today - timedelta(days=1)


def digest_id(address: str, at: datetime) -> str:
    """The id of ``address``'s digest for the slot ``at``: one per address and day. Pure."""
    return str(uuid.uuid5(_NAMESPACE, f"digest|{address.lower()}|{at.date().isoformat()}"))


@dataclass(frozen=True)
class Kept:
    """A notice kept for an address's next digest."""

    notice: NoticeMessage
    person: Person
    at: datetime


class DigestBook(TableItems):
    """Keeps, lists and clears digest items with the timer store's client."""

    what = "digest"

    @classmethod
    def beside(cls, ledger: MailLedger) -> DigestBook:
        """A book in the same table as ``ledger``."""
        return cls(ledger.client, ledger.table)

    def keep(self, notice: NoticeMessage, person: Person, at: datetime) -> bool:
        """Keep ``notice`` for ``person``'s digest; False if it was kept already (unchanged)."""
        address = person.address.lower()
        expires = {"N": str(int((at + RETENTION).timestamp()))}
        self._call(
            "put_item",
            Item={"pk": {"S": INDEX_PK}, "sk": {"S": address}, "expires_at": expires},
        )
        return self._put_if(
            Item={
                "pk": {"S": f"digest#{address}"},
                "sk": {"S": notice.notice_id},
                "payload": {"S": notice.model_dump_json()},
                "at": {"S": at.isoformat()},
                "name": {"S": person.name},
                "user_id": {"S": person.user_id or ""},
                "why": {"S": person.why},
                "expires_at": expires,
            },
            # a redelivery keeps the first arrival time, so the notice stays in its day
            ConditionExpression="attribute_not_exists(pk)",
        )

    def _query(self, pk: str) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ConsistentRead": True,
        }
        while True:
            out = self._call("query", **kwargs)
            yield from out.get("Items", [])
            if "LastEvaluatedKey" not in out:
                return
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def addresses(self) -> list[str]:
        """Addresses that had notices kept (some may have none left)."""
        return sorted(item["sk"]["S"] for item in self._query(INDEX_PK))

    def kept(self, address: str, until: datetime) -> list[Kept]:
        """The notices kept for ``address`` that arrived at or before ``until``."""
        out = []
        for item in self._query(f"digest#{address.lower()}"):
            at = datetime.fromisoformat(item["at"]["S"])
            if at > until:
                continue
            person = Person(
                address.lower(),
                item.get("name", {}).get("S", ""),
                item.get("user_id", {}).get("S", "") or None,
                item.get("why", {}).get("S", ""),
            )
            out.append(Kept(parse_notice(json.loads(item["payload"]["S"])), person, at))
        return out

    def clear(self, address: str, notice_ids: list[str]) -> None:
        """Delete the kept notices ``notice_ids`` of ``address``."""
        for nid in notice_ids:
            self._call("delete_item", Key={"pk": {"S": f"digest#{address.lower()}"},
                                           "sk": {"S": nid}})  # fmt: skip
