"""Stored resource items that do not decode: found, shown, reported once, dropped.

Every read of the timer store skips such an item and goes on with the others
(:meth:`reclaim.store.dynamodb.DynamoTimerStore.unreadable`). The item stays in the table
as it is until an operator drops it (``reclaim store quarantine drop KEY``); a reconcile
then rebuilds its resource's timers from the cloud. That operators were alerted is kept on
the item itself (:data:`~reclaim.store.dynamodb.REPORTED`), so the alert goes out once,
not on every sweep, and again only if the item is written anew and still does not decode.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reclaim.redact import scrub
from reclaim.store.dynamodb import (
    REPORTED,
    TIMERS_SK,
    DynamoTimerStore,
    decode_item,
    why_unreadable,
)
from reclaim.store.items import TableItems

#: Longest text of one attribute shown by :func:`safe_view`.
SHOWN_CHARS = 2000


@dataclass(frozen=True)
class Quarantined:
    """An unreadable item as found in the table: its key, what is wrong, when operators
    were alerted (None: not yet), and the item as stored."""

    key: str
    reason: str
    reported_at: str | None
    item: dict[str, Any]


def _key(key: str) -> dict[str, Any]:
    return {"pk": {"S": key}, "sk": {"S": TIMERS_SK}}


def examine(item: dict[str, Any]) -> Quarantined | None:
    """The item as quarantined when it does not decode; None when it does. Pure."""
    try:
        decode_item(item)
    except Exception as exc:
        return Quarantined(
            key=str(item.get("pk", {}).get("S", "?")),
            reason=why_unreadable(exc),
            reported_at=item.get(REPORTED, {}).get("S"),
            item=item,
        )
    return None


def safe_view(item: dict[str, Any]) -> str:
    """An item as indented JSON for a terminal: secrets scrubbed, every non-ASCII or control
    character escaped, each text cut at :data:`SHOWN_CHARS`. Pure."""

    def cut(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): cut(v) for k, v in value.items()}
        if isinstance(value, list):
            return [cut(v) for v in value]
        if isinstance(value, bytes):
            return f"<{len(value)} bytes>"
        if isinstance(value, str) and len(value) > SHOWN_CHARS:
            return f"{value[:SHOWN_CHARS]}... ({len(value)} characters)"
        return value

    return json.dumps(cut(scrub(item)), indent=2, ensure_ascii=True, default=str)


class Quarantine(TableItems):
    """The unreadable resource items of a timer table (a full scan: an operator's command,
    never the sweeper's path), and the reported mark on them."""

    what = "quarantine"

    @classmethod
    def beside(cls, store: DynamoTimerStore) -> Quarantine:
        """The quarantine of the table of ``store``."""
        return cls(store.client, store.table)

    def scan(self) -> Iterator[Quarantined]:
        """Every resource item that does not decode, in table order."""
        kwargs: dict[str, Any] = {
            "FilterExpression": "sk = :sk",
            "ExpressionAttributeValues": {":sk": {"S": TIMERS_SK}},
            "ConsistentRead": True,
        }
        while True:
            out = self._call("scan", **kwargs)
            for item in out.get("Items", []):
                found = examine(item)
                if found is not None:
                    yield found
            if "LastEvaluatedKey" not in out:
                return
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def get(self, key: str) -> dict[str, Any] | None:
        """The item stored under ``key`` (``<resource_type>#<resource_id>``), or None."""
        item: dict[str, Any] | None = self._call(
            "get_item", Key=_key(key), ConsistentRead=True
        ).get("Item")
        return item

    def mark_reported(self, key: str, at: datetime) -> bool:
        """Record on the item that operators were alerted; False when it is gone or was
        marked already (another sweeper reported it)."""
        return self._update_if(
            Key=_key(key),
            UpdateExpression="SET #r = :at",
            ConditionExpression="attribute_exists(pk) AND attribute_not_exists(#r)",
            ExpressionAttributeNames={"#r": REPORTED},
            ExpressionAttributeValues={":at": {"S": at.isoformat()}},
        )

    def drop(self, found: Quarantined) -> bool:
        """Delete the item if it is still as found; False when it changed or is gone."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        conditions = ["attribute_exists(pk)"]
        for n, (name, value) in enumerate(sorted(found.item.items())):
            if name in ("pk", "sk") or len(value) != 1 or next(iter(value)) not in ("S", "N", "B"):
                continue
            names[f"#a{n}"], values[f":a{n}"] = name, value
            conditions.append(f"#a{n} = :a{n}")
        kwargs: dict[str, Any] = {
            "Key": _key(found.key),
            "ConditionExpression": " AND ".join(conditions),
        }
        if names:
            kwargs["ExpressionAttributeNames"] = names
            kwargs["ExpressionAttributeValues"] = values
        return self._delete_if(**kwargs)
