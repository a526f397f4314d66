"""Other records kept in the timer table (mail ledger, digests, the breaker) with its client."""

from __future__ import annotations

from typing import Any, ClassVar

from botocore.exceptions import BotoCoreError, ClientError

from reclaim.store.dynamodb import StoreError


class TableItems:
    """Reads and writes one kind of record in the timer table; any failure is a
    :class:`StoreError` naming the kind (``what``), the operation and the table."""

    what: ClassVar[str] = "items"

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def _call(self, op: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, op)(TableName=self.table, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"{self.what} {op} on {self.table}: {exc}") from exc

    def _put_if(self, **kwargs: Any) -> bool:
        """PutItem with a ``ConditionExpression``; False when the condition did not hold."""
        return self._if("put_item", **kwargs)

    def _update_if(self, **kwargs: Any) -> bool:
        """UpdateItem with a ``ConditionExpression``; False when the condition did not hold."""
        return self._if("update_item", **kwargs)

    def _delete_if(self, **kwargs: Any) -> bool:
        """DeleteItem with a ``ConditionExpression``; False when the condition did not hold."""
        return self._if("delete_item", **kwargs)

    def _if(self, op: str, **kwargs: Any) -> bool:
        try:
            getattr(self.client, op)(TableName=self.table, **kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise StoreError(f"{self.what} {op} on {self.table}: {exc}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"{self.what} {op} on {self.table}: {exc}") from exc
        return True
