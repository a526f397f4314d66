"""The circuit breaker: once a cap is hit, destructive actions stop until an operator resets it.

It is one item in the timer table (``pk = breaker#global``, ``sk = breaker``): it has no
``due_shard``, so the due index never sees it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from reclaim.store import DynamoTimerStore
from reclaim.store.items import TableItems

KEY = {"pk": {"S": "breaker#global"}, "sk": {"S": "breaker"}}


@dataclass(frozen=True)
class BreakerState:
    """Whether destructive actions are blocked, since when, and why."""

    open: bool
    opened_at: str = ""
    reason: str = ""
    reset_at: str = ""
    reset_by: str = ""
    reset_reason: str = ""


class Breaker(TableItems):
    """Reads and flips the breaker item with the store's client."""

    what = "breaker"

    def __init__(self, store: DynamoTimerStore) -> None:
        super().__init__(store.client, store.table)

    def status(self) -> BreakerState:
        """The breaker as stored (closed when it was never opened)."""
        item = self._call("get_item", Key=KEY, ConsistentRead=True).get("Item")
        if not item:
            return BreakerState(open=False)

        def s(name: str) -> str:
            return str(item.get(name, {}).get("S", ""))

        return BreakerState(
            open=s("breaker_state") == "open",
            opened_at=s("opened_at"),
            reason=s("reason"),
            reset_at=s("reset_at"),
            reset_by=s("reset_by"),
            reset_reason=s("reset_reason"),
        )

    def open(self, at: datetime, reason: str) -> bool:
        """Open the breaker; False when it was open already (the first reason is kept)."""
        return self._put_if(
            Item={
                **KEY,
                "breaker_state": {"S": "open"},
                "opened_at": {"S": at.isoformat()},
                "reason": {"S": reason},
            },
            ConditionExpression="attribute_not_exists(pk) OR #s <> :open",
            ExpressionAttributeNames={"#s": "breaker_state"},
            ExpressionAttributeValues={":open": {"S": "open"}},
        )

    def reset(self, at: datetime, by: str, why: str = "") -> BreakerState:
        """Close the breaker (an operator's decision, ``why`` kept with it); returns the
        state it had."""
        before = self.status()
        item = {
            **KEY,
            "breaker_state": {"S": "closed"},
            "opened_at": {"S": before.opened_at},
            "reason": {"S": before.reason},
            "reset_at": {"S": at.isoformat()},
            "reset_by": {"S": by},
        }
        if why:
            item["reset_reason"] = {"S": why}
        self._call("put_item", Item=item)
        return before
