"""Stored items that do not decode, written raw with boto3 as a bad release or a hostile
event of the past could have left them."""

from __future__ import annotations

import json
from typing import Any, Literal

from reclaim.store import DynamoTimerStore
from reclaim.store.dynamodb import TIMERS_SK, shard_of

#: A date as an event stamped year 0001 was stored: ``strftime('%Y')`` writes year 1 as ``1``.
YEAR_ONE = "1-01-08T00:00:00.000000Z"

Poison = Literal["year-one", "garbage"]


def poison(
    store: DynamoTimerStore,
    resource_id: str,
    kind: Poison = "year-one",
    *,
    resource_type: str = "server",
    **extra: dict[str, Any],
) -> str:
    """Write an unreadable item for ``resource_type``/``resource_id`` in the due index (so the
    sweeper's reads meet it); ``extra`` attributes are stored beside. Returns its key."""
    pk = f"{resource_type}#{resource_id}"
    timer = {
        "resource_type": resource_type, "resource_id": resource_id, "rule": "shelve",
        "action": "shelve", "state": "pending", "since": YEAR_ONE, "due_at": YEAR_ONE,
    }  # fmt: skip
    doc = json.dumps([timer]) if kind == "year-one" else '[{"resource_type": "server", '
    item: dict[str, Any] = {
        "pk": {"S": pk},
        "sk": {"S": TIMERS_SK},
        "resource_type": {"S": resource_type},
        "resource_id": {"S": resource_id},
        "version": {"N": "1"},
        "doc": {"S": doc},
        "due_shard": {"S": shard_of(pk)},
        "next_due": {"S": YEAR_ONE},
        **extra,
    }
    store.client.put_item(TableName=store.table, Item=item)
    return pk
