"""Poison notifications kept in the timer table, so a bad message never blocks a batch.

Lambda's Amazon MQ event source cannot redeliver part of a batch, so a record that can never
be processed is written here and the batch succeeds. Dead letters live in one partition
(``pk = "deadletter"``), one item per distinct body (``sk`` = its SHA-256): a redelivered
poison message updates its item (``seen`` counts deliveries) instead of adding another.
They carry no ``due_shard``, so the sweeper's due index never sees them, and expire by the
table's TTL attribute.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from reclaim.commands import iso_z
from reclaim.store import StoreError

PARTITION = "deadletter"
#: How long a dead letter stays readable before the table's TTL removes it.
RETENTION = timedelta(days=30)
#: DynamoDB items hold at most 400 KB; a longer body is kept truncated.
MAX_BODY = 300_000


@dataclass(frozen=True)
class DeadLetter:
    """A notification reclaim could not process: its body, why, and where it came from."""

    body: bytes
    problem: str
    source: str
    ref: str = ""


class DeadLetterSink(Protocol):
    """Somewhere durable to put poison messages."""

    def put(self, letter: DeadLetter, now: datetime) -> None:
        """Keep ``letter``; raise :class:`reclaim.store.StoreError` if it could not be kept."""
        ...


class TableDeadLetters:
    """Dead letters in the timer table (client injected, like the timer store)."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def put(self, letter: DeadLetter, now: datetime) -> None:
        """Record ``letter`` once per distinct body; later deliveries bump ``seen``."""
        body = letter.body[:MAX_BODY]
        try:
            text, encoding = body.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(body).decode("ascii"), "base64"
        # All names aliased: several (source, ttl-like names) are DynamoDB reserved words.
        names = {
            "#body": "body", "#enc": "body_encoding", "#trunc": "truncated", "#problem": "problem",
            "#source": "source", "#ref": "ref", "#first": "first_seen", "#last": "last_seen",
            "#seen": "seen", "#exp": "expires_at",
        }  # fmt: skip
        values = {
            ":body": {"S": text},
            ":enc": {"S": encoding},
            ":trunc": {"BOOL": len(letter.body) > MAX_BODY},
            ":problem": {"S": letter.problem[:2000]},
            ":source": {"S": letter.source},
            ":ref": {"S": letter.ref or "-"},
            ":now": {"S": iso_z(now)},
            ":one": {"N": "1"},
            ":exp": {"N": str(int((now + RETENTION).timestamp()))},
        }
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"pk": {"S": PARTITION}, "sk": {"S": hashlib.sha256(letter.body).hexdigest()}},
                UpdateExpression=(
                    "SET #body = :body, #enc = :enc, #trunc = :trunc, #problem = :problem, "
                    "#source = :source, #ref = :ref, #first = if_not_exists(#first, :now), "
                    "#last = :now, #exp = :exp ADD #seen :one"
                ),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"dead letter into {self.table}: {exc}") from exc

    def list(self) -> Iterator[dict[str, Any]]:
        """Every dead letter (a query on its partition), as plain JSON-able dicts."""
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
                raise StoreError(f"dead letters in {self.table}: {exc}") from exc
            for item in out.get("Items", []):
                yield _plain(item)
            if "LastEvaluatedKey" not in out:
                return
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": item["sk"]["S"]}
    for key, value in item.items():
        if key in ("pk", "sk"):
            continue
        ((kind, raw),) = value.items()
        out[key] = int(raw) if kind == "N" else raw
    return out


def utcnow() -> datetime:
    """The current time, aware UTC (the one clock the adapters read)."""
    return datetime.now(UTC)
