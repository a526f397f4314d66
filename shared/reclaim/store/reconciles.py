"""The record that a reconcile of the whole cloud has completed on a timer table.

One item (``pk = reconcile#global``, ``sk = reconcile``) beside the timers: it has no
``due_shard``, so the due index never sees it. Its absence is what makes a reconcile the
store's first (:func:`reclaim.reconcile.engine.reconcile`), which then gives every action
already due the first-install grace.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from reclaim.store.dynamodb import DynamoTimerStore
from reclaim.store.items import TableItems
from reclaim.store.port import ReconcileLog, ReconcileMark, TimerStore

KEY = {"pk": {"S": "reconcile#global"}, "sk": {"S": "reconcile"}}


class ReconcileRecord(TableItems):
    """Reads and writes the reconcile record with the store's client (a :class:`ReconcileLog`)."""

    what = "reconcile record"

    @classmethod
    def beside(cls, store: DynamoTimerStore) -> ReconcileRecord:
        """The record kept in the table of ``store``."""
        return cls(store.client, store.table)

    def completed(self) -> ReconcileMark | None:
        """The mark as stored (strongly consistent read); None when there is none."""
        item = self._call("get_item", Key=KEY, ConsistentRead=True).get("Item")
        if not item:
            return None
        grace = item.get("grace_seconds", {}).get("N")
        return ReconcileMark(
            at=datetime.fromisoformat(item["reconciled_at"]["S"]),
            grace=timedelta(seconds=float(grace)) if grace is not None else None,
        )

    def record(self, mark: ReconcileMark) -> bool:
        """Write the mark if there is none yet; False (and the first one kept) otherwise."""
        item = {**KEY, "reconciled_at": {"S": mark.at.isoformat()}}
        if mark.grace is not None:
            item["grace_seconds"] = {"N": str(mark.grace.total_seconds())}
        return self._put_if(Item=item, ConditionExpression="attribute_not_exists(pk)")


def reconcile_log(store: TimerStore) -> ReconcileLog | None:
    """Where ``store`` keeps its reconcile record: its table's, for a DynamoDB store; None
    for a store that has no table to keep one in."""
    if isinstance(store, DynamoTimerStore):
        return ReconcileRecord.beside(store)
    return None
