"""Dead letters: messages reclaim could not use, kept with the reason for an operator.

One format for every runtime: the bus listener (``reclaim listen``) and the Lambda functions
write them, ``reclaim deadletters list|replay`` reads them. No oslo import here: this module
is part of the Lambda layer, which leaves oslo.messaging out.

They live in the timer table (no new infrastructure) in their own partition:
``pk = "deadletter"``, ``sk = <id>``, the record as JSON in ``doc``, with ``state``,
``deliveries`` and ``expires_at`` (the table's TTL attribute) beside it. They carry no
``due_shard``/``next_due``, so the sweeper's ``due`` index never sees them, and no resource
partition (``<type>#<id>``) can collide with them. The id is a hash of the body, so a
redelivery of the same message (a crash between record and ack, or Lambda returning a batch
to the broker) lands on its own record instead of adding one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict

from reclaim.commands import Instant
from reclaim.redact import scrub, scrub_text
from reclaim.store import StoreError

PARTITION = "deadletter"
#: Bodies are kept up to this size (DynamoDB items are limited to 400 KB); larger ones
#: keep their head, size and hash, and cannot be replayed.
MAX_BODY = 96 * 1024
MAX_REASON = 2000
#: How long a dead letter stays readable before the table's TTL removes it.
RETENTION = timedelta(days=30)
#: Where a message failed: its bytes, its envelope or model, the policy handler, or a store
#: write rejected as invalid (the same write fails on every delivery).
Stage = Literal["decode", "parse", "handler", "store"]


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
    #: Where it came from on Lambda: the queue (``<queue>::<vhost>``) or SQS ARN, and the
    #: record's name in its batch.
    source: str | None = None
    ref: str | None = None
    state: Literal["open", "replayed"] = "open"
    replayed_at: Instant | None = None
    #: Replays tried (1: none yet).
    attempts: int = 1
    #: Deliveries seen, counted where letters are kept one by one (:meth:`DeadLetterStore.keep`).
    deliveries: int = 1

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
    source: str | None = None,
    ref: str | None = None,
    message_id: str | None = None,
    event_type: str | None = None,
    now: datetime | None = None,
) -> DeadLetter:
    """Build the record of a rejected body (bytes as received, or a decoded message), without
    its request context or tokens (:func:`reclaim.redact.scrub`). Pure."""
    if isinstance(body, Mapping):
        event_type = _short(body.get("event_type")) or event_type
        message_id = _short(body.get("message_id")) or message_id
        try:
            raw = json.dumps(scrub(body), default=repr).encode("utf-8")
        except (ValueError, TypeError, RecursionError):
            raw = scrub_text(repr(body)[: MAX_BODY * 2]).encode("utf-8", "replace")
    else:
        text = body if isinstance(body, str) else bytes(body).decode("utf-8", "surrogateescape")
        raw = scrub_text(text).encode("utf-8", "surrogateescape")
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
        reason=scrub_text(reason)[:MAX_REASON],
        body=text,
        body_encoding=encoding,
        body_size=len(raw),
        body_sha256=digest,
        truncated=len(raw) > MAX_BODY,
        exchange=_short(exchange),
        routing_key=_short(routing_key),
        event_type=_short(event_type),
        message_id=_short(message_id),
        source=_short(source, 1024),
        ref=_short(ref, 1024),
    )


class DeadLetterSink(Protocol):
    """Somewhere durable to put one dead letter at a time (the Lambda functions' need)."""

    def keep(self, letter: DeadLetter) -> None:
        """Keep ``letter``; raise :class:`reclaim.store.StoreError` if it could not be kept."""
        ...


class DeadLetterStore:
    """Dead letters in the timer table, through the timer store's own client."""

    def __init__(self, client: Any, table: str, retention: timedelta = RETENTION) -> None:
        self.client = client
        self.table = table
        self.retention = retention

    @classmethod
    def beside(cls, store: Any) -> DeadLetterStore:
        """The dead letters kept in the table of a :class:`DynamoTimerStore`."""
        return cls(store.client, store.table)

    def _expires(self, letter: DeadLetter) -> str:
        return str(int((letter.received_at + self.retention).timestamp()))

    def _item(self, letter: DeadLetter) -> dict[str, Any]:
        return {
            "pk": {"S": PARTITION},
            "sk": {"S": letter.id},
            "state": {"S": letter.state},
            "deliveries": {"N": str(letter.deliveries)},
            "expires_at": {"N": self._expires(letter)},
            "doc": {"S": letter.model_dump_json()},
        }

    @staticmethod
    def _letter(item: dict[str, Any]) -> DeadLetter:
        letter = DeadLetter.model_validate_json(item["doc"]["S"])
        if "deliveries" in item:
            letter = letter.model_copy(update={"deliveries": int(item["deliveries"]["N"])})
        return letter

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
                yield self._letter(item)
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
        return self._letter(out["Item"]) if "Item" in out else None

    def put(self, letter: DeadLetter) -> None:
        """Store one record as it is (after a replay or a new reason)."""
        try:
            self.client.put_item(TableName=self.table, Item=self._item(letter))
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"writing dead letter {letter.id}: {exc}") from exc

    def keep(self, letter: DeadLetter) -> None:
        """Store one letter, or count one more delivery of a body already kept.

        The first record of a body stays as it was (its reason, its first arrival, its state);
        a later delivery only adds to ``deliveries``.
        """
        # Every name aliased: state, doc... are or may become DynamoDB reserved words.
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"pk": {"S": PARTITION}, "sk": {"S": letter.id}},
                UpdateExpression=(
                    "SET #doc = if_not_exists(#doc, :doc), #state = if_not_exists(#state, :state),"
                    " #exp = if_not_exists(#exp, :exp) ADD #n :one"
                ),
                ExpressionAttributeNames={
                    "#doc": "doc",
                    "#state": "state",
                    "#exp": "expires_at",
                    "#n": "deliveries",
                },
                ExpressionAttributeValues={
                    ":doc": {"S": letter.model_dump_json()},
                    ":state": {"S": letter.state},
                    ":exp": {"N": self._expires(letter)},
                    ":one": {"N": "1"},
                },
            )
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"keeping dead letter {letter.id} in {self.table}: {exc}") from exc
