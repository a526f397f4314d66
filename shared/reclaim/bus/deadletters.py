"""Dead letters: messages reclaim could not use, kept with the reason for an operator.

They live in the timer table (no new infrastructure) in their own partition:
``pk = "deadletter"``, ``sk = <id>``, the record as JSON in ``doc`` and ``state`` beside it.
They carry no ``due_shard``/``next_due``, so the sweeper's ``due`` index never sees them, and
no resource partition (``<type>#<id>``) can collide with them. The id is a hash of the
body, so a redelivery of the same message (a crash between record and ack) overwrites its
own record instead of adding one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict

from reclaim.commands import Instant
from reclaim.store import StoreError

PARTITION = "deadletter"
#: Bodies are kept up to this size (DynamoDB items are limited to 400 KB); larger ones
#: keep their head, size and hash, and cannot be replayed.
MAX_BODY = 96 * 1024
MAX_REASON = 2000
Stage = Literal["decode", "parse", "handler"]


class DeadLetter(BaseModel):
    """One message reclaim could not use, and why."""

    model_config = ConfigDict(frozen=True)

    id: str
    received_at: Instant
    stage: Stage
    reason: str
    body: str
    body_encoding: Literal["utf-8", "base64"] = "utf-8"
    body_size: int
    body_sha256: str
    truncated: bool = False
    exchange: str | None = None
    routing_key: str | None = None
    event_type: str | None = None
    message_id: str | None = None
    state: Literal["open", "replayed"] = "open"
    replayed_at: Instant | None = None
    attempts: int = 1

    def raw(self) -> bytes:
        """The body as received (the kept head if it was truncated)."""
        if self.body_encoding == "base64":
            return base64.b64decode(self.body)
        return self.body.encode("utf-8")


def _short(value: Any, limit: int = 255) -> str | None:
    return value[:limit] if isinstance(value, str) else None


def dead_letter(
    body: bytes | str | Mapping[str, Any],
    *,
    stage: Stage,
    reason: str,
    exchange: str | None = None,
    routing_key: str | None = None,
    now: datetime | None = None,
) -> DeadLetter:
    """Build the record of a rejected body (bytes as received, or a decoded message). Pure."""
    event_type = message_id = None
    if isinstance(body, Mapping):
        event_type = _short(body.get("event_type"))
        message_id = _short(body.get("message_id"))
        try:
            raw = json.dumps(body, default=repr).encode("utf-8")
        except (ValueError, TypeError, RecursionError):
            raw = repr(body)[: MAX_BODY * 2].encode("utf-8", "replace")
    else:
        raw = body.encode("utf-8", "surrogateescape") if isinstance(body, str) else bytes(body)
    digest = hashlib.sha256(raw).hexdigest()
    head = raw[:MAX_BODY]
    try:
        text, encoding = head.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(head).decode("ascii"), "base64"
    return DeadLetter(
        id=digest[:24],
        received_at=now or datetime.now(UTC),
        stage=stage,
        reason=reason[:MAX_REASON],
        body=text,
        body_encoding=encoding,
        body_size=len(raw),
        body_sha256=digest,
        truncated=len(raw) > MAX_BODY,
        exchange=_short(exchange),
        routing_key=_short(routing_key),
        event_type=event_type,
        message_id=message_id,
    )


class DeadLetterStore:
    """Dead letters in the timer table, through the timer store's own client."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    @classmethod
    def beside(cls, store: Any) -> DeadLetterStore:
        """The dead letters kept in the table of a :class:`DynamoTimerStore`."""
        return cls(store.client, store.table)

    def _item(self, letter: DeadLetter) -> dict[str, Any]:
        return {
            "pk": {"S": PARTITION},
            "sk": {"S": letter.id},
            "state": {"S": letter.state},
            "doc": {"S": letter.model_dump_json()},
        }

    def record(self, letters: Sequence[DeadLetter]) -> None:
        """Store the letters durably (batched); raises :class:`StoreError` if it cannot."""
        unique = {lt.id: lt for lt in letters}
        pending = [{"PutRequest": {"Item": self._item(lt)}} for lt in unique.values()]
        delay = 0.05
        while pending:
            chunk, pending = pending[:25], pending[25:]
            for _ in range(10):
                try:
                    out = self.client.batch_write_item(RequestItems={self.table: chunk})
                except (ClientError, BotoCoreError) as exc:
                    raise StoreError(f"recording dead letters in {self.table}: {exc}") from exc
                chunk = out.get("UnprocessedItems", {}).get(self.table, [])
                if not chunk:
                    break
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
            else:
                raise StoreError(f"recording dead letters in {self.table}: throttled")

    def list(self, *, include_replayed: bool = False) -> list[DeadLetter]:
        """The dead letters, oldest first (one query on their partition)."""
        return sorted(
            (lt for lt in self._query() if include_replayed or lt.state == "open"),
            key=lambda lt: (lt.received_at, lt.id),
        )

    def _query(self) -> Iterator[DeadLetter]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": PARTITION}},
            "ConsistentRead": True,
        }
        while True:
            try:
                out = self.client.query(**kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise StoreError(f"listing dead letters in {self.table}: {exc}") from exc
            for item in out.get("Items", []):
                yield DeadLetter.model_validate_json(item["doc"]["S"])
            if "LastEvaluatedKey" not in out:
                return
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def get(self, letter_id: str) -> DeadLetter | None:
        """One dead letter by id, or None."""
        try:
            out = self.client.get_item(
                TableName=self.table,
                Key={"pk": {"S": PARTITION}, "sk": {"S": letter_id}},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"reading dead letter {letter_id}: {exc}") from exc
        return DeadLetter.model_validate_json(out["Item"]["doc"]["S"]) if "Item" in out else None

    def put(self, letter: DeadLetter) -> None:
        """Store one record as it is (after a replay or a new reason)."""
        try:
            self.client.put_item(TableName=self.table, Item=self._item(letter))
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"writing dead letter {letter.id}: {exc}") from exc
