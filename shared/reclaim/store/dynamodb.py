"""The timer store on any DynamoDB-compatible endpoint: AWS, ScyllaDB Alternator, dynalite, moto.

Layout (the table is defined in ``template.yaml``): one item per (resource, rule) with
``pk = "<resource_type>#<resource_id>"`` and ``sk = <rule>``; the timer itself is the JSON
attribute ``doc``; ``version`` guards every write. Pending timers also carry
``due_shard``/``next_due``, the keys of the sparse ``due`` index.
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import os
import zlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from reclaim.commands import TimerCommand
from reclaim.policy.images import ALL_RULES
from reclaim.store import schema
from reclaim.store.port import ApplyResult
from reclaim.timers import Timer, merge

DUE_INDEX = "due"
SHARDS = 16
#: Closed timers stay readable (audit) this long after their last event, then expire.
RETENTION = timedelta(days=400)
MAX_RETRIES = 8


class StoreError(RuntimeError):
    """The store could not be read or written; nothing was half-applied."""


def _due_key(when: datetime) -> str:
    # Fixed width so that string order is time order.
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def shard_of(pk: str) -> str:
    """The due-index shard of a partition key: stable, spread evenly."""
    return f"{zlib.crc32(pk.encode()) % SHARDS:02d}"


def _pk(resource_type: str, resource_id: str) -> str:
    return f"{resource_type}#{resource_id}"


class DynamoTimerStore:
    """:class:`reclaim.store.port.TimerStore` on a DynamoDB client (injected)."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    # -- encoding -------------------------------------------------------------------
    def _item(self, timer: Timer) -> dict[str, Any]:
        pk = _pk(timer.resource_type, timer.resource_id)
        item: dict[str, Any] = {
            "pk": {"S": pk},
            "sk": {"S": timer.rule},
            "resource_type": {"S": timer.resource_type},
            "resource_id": {"S": timer.resource_id},
            "action": {"S": timer.action},
            "state": {"S": timer.state},
            "version": {"N": str(timer.version)},
            "doc": {"S": timer.model_dump_json()},
        }
        if timer.project_id:
            item["project_id"] = {"S": timer.project_id}
        due = timer.next_due()
        if due is not None:
            item["due_shard"] = {"S": shard_of(pk)}
            item["next_due"] = {"S": _due_key(due)}
        else:
            last = timer.last_event_at
            if last is not None:
                item["expires_at"] = {"N": str(int((last + RETENTION).timestamp()))}
        return item

    @staticmethod
    def _timer(item: dict[str, Any]) -> Timer:
        return Timer.model_validate_json(item["doc"]["S"])

    def _call(self, op: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, op)(**kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise
            raise StoreError(f"{op} on {self.table}: {exc}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"{op} on {self.table}: {exc}") from exc

    # -- reads ----------------------------------------------------------------------
    def _get(self, resource_type: str, resource_id: str, rule: str) -> Timer | None:
        out = self._call(
            "get_item",
            TableName=self.table,
            Key={"pk": {"S": _pk(resource_type, resource_id)}, "sk": {"S": rule}},
            ConsistentRead=True,
        )
        return self._timer(out["Item"]) if "Item" in out else None

    def _get_many(self, keys: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], Timer]:
        """Read many timers in BatchGetItem calls of 100 (consistent reads); absent ones are left out."""
        found: dict[tuple[str, str, str], Timer] = {}
        for start in range(0, len(keys), 100):
            request: dict[str, Any] = {
                self.table: {
                    "Keys": [
                        {"pk": {"S": _pk(rtype, rid)}, "sk": {"S": rule}}
                        for rtype, rid, rule in keys[start : start + 100]
                    ],
                    "ConsistentRead": True,
                }
            }
            while request:
                out = self._call("batch_get_item", RequestItems=request)
                for item in out.get("Responses", {}).get(self.table, []):
                    timer = self._timer(item)
                    found[timer.key] = timer
                request = out.get("UnprocessedKeys") or {}
        return found

    def get_many(self, keys: Sequence[tuple[str, str, str]]) -> dict[tuple[str, str, str], Timer]:
        """The stored timers of many (resource_type, resource_id, rule) keys, by key.

        BatchGetItem calls of 100 keys, consistent reads; keys without a timer are left out.
        """
        return self._get_many(list(dict.fromkeys(keys)))

    def timers_for(self, resource_type: str, resource_id: str) -> list[Timer]:
        """Every timer of one resource (a query on its partition), ordered by rule."""
        items: list[Timer] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": _pk(resource_type, resource_id)}},
            "ConsistentRead": True,
        }
        while True:
            out = self._call("query", **kwargs)
            items.extend(self._timer(i) for i in out.get("Items", []))
            if "LastEvaluatedKey" not in out:
                return items
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def _shard(self, shard: str, due_before: datetime | None) -> Iterator[Timer]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": DUE_INDEX,
            "KeyConditionExpression": "due_shard = :s"
            + (" AND next_due <= :d" if due_before is not None else ""),
            "ExpressionAttributeValues": {":s": {"S": shard}},
        }
        if due_before is not None:
            kwargs["ExpressionAttributeValues"][":d"] = {"S": _due_key(due_before)}
        while True:
            out = self._call("query", **kwargs)
            for item in out.get("Items", []):
                yield self._timer(item)
            if "LastEvaluatedKey" not in out:
                return
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def pending(self, due_before: datetime | None = None) -> Iterator[Timer]:
        """Pending timers due before ``due_before``, merged across shards in due order.

        Reads only the due index (sparse: it holds pending timers alone), never the table.
        """
        shards = [self._shard(f"{n:02d}", due_before) for n in range(SHARDS)]
        keyed = (((t.next_due(), t.key, t) for t in it) for it in shards)
        for _, _, timer in heapq.merge(*keyed, key=lambda x: (x[0], x[1])):
            yield timer

    def pending_pages(self, page_size: int = 100) -> Iterator[list[Timer]]:
        """Every pending timer, shard by shard, at most ``page_size`` at a time; no due order.

        A pass over all pending work in memory flat in the size of the table (the
        reconcile's search for timers of resources that are gone): :meth:`pending` holds a
        result page (up to 1 MB) of every shard at once to merge them in due order.
        """
        for n in range(SHARDS):
            kwargs: dict[str, Any] = {
                "TableName": self.table,
                "IndexName": DUE_INDEX,
                "KeyConditionExpression": "due_shard = :s",
                "ExpressionAttributeValues": {":s": {"S": f"{n:02d}"}},
                "Limit": page_size,
            }
            while True:
                out = self._call("query", **kwargs)
                page = [self._timer(item) for item in out.get("Items", [])]
                if page:
                    yield page
                if "LastEvaluatedKey" not in out:
                    break
                kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    # -- writes ---------------------------------------------------------------------
    def _put(self, old: Timer | None, new: Timer) -> bool:
        """Write ``new`` if the item is still as read (absent, or ``old``'s version)."""
        item = self._item(new)
        if old is None:
            condition = "attribute_not_exists(pk)"
            values: dict[str, Any] = {}
        else:
            condition = "#v = :v"
            values = {":v": {"N": str(old.version)}}
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Item": item,
            "ConditionExpression": condition,
        }
        if values:
            kwargs["ExpressionAttributeValues"] = values
            kwargs["ExpressionAttributeNames"] = {"#v": "version"}
        try:
            self._call("put_item", **kwargs)
        except ClientError:
            return False
        return True

    def replace(self, old: Timer, new: Timer) -> Timer | None:
        """Compare-and-set on the version: store ``new`` only if ``old`` is still stored."""
        stored = new.model_copy(update={"version": old.version + 1})
        return stored if self._put(old, stored) else None

    def apply(self, commands: Sequence[TimerCommand]) -> ApplyResult:
        """Fold commands into the stored timers, one conditional write per changed timer.

        Commands for the same (resource, rule) collapse into one read and one write. A
        wildcard cancel (rule ``*``) applies to every timer the resource has.
        """
        groups: dict[tuple[str, str, str], list[TimerCommand]] = {}
        wildcards: list[TimerCommand] = []
        for c in commands:
            if c.rule == ALL_RULES:
                wildcards.append(c)
            else:
                groups.setdefault((c.resource_type, c.resource_id, c.rule), []).append(c)
        for c in wildcards:
            # Every rule the resource has: stored, or about to be by this same batch.
            rules = {t.rule for t in self.timers_for(c.resource_type, c.resource_id)}
            rules |= {k[2] for k in groups if k[:2] == (c.resource_type, c.resource_id)}
            for rule in rules:
                groups.setdefault((c.resource_type, c.resource_id, rule), []).append(
                    dataclasses.replace(c, rule=rule)
                )
        written = unchanged = retries = 0
        current = self._get_many(list(groups))
        for (rtype, rid, rule), cmds in groups.items():
            old = current.get((rtype, rid, rule))
            for _ in range(MAX_RETRIES):
                new = merge(old, cmds)
                if new is None or (old is not None and new == old):
                    unchanged += 1
                    break
                stored = new.model_copy(update={"version": (old.version + 1) if old else 1})
                if self._put(old, stored):
                    written += 1
                    break
                retries += 1
                old = self._get(rtype, rid, rule)  # somebody wrote it first: merge into theirs
            else:
                raise StoreError(
                    f"{rtype} {rid} rule {rule}: gave up after {MAX_RETRIES} conflicting writes"
                )
        return ApplyResult(written=written, unchanged=unchanged, retries=retries)

    # -- table ----------------------------------------------------------------------
    def ensure_table(self) -> None:
        """Create the table from ``template.yaml`` if it does not exist (dev endpoints)."""
        try:
            self.client.describe_table(TableName=self.table)
            return
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise StoreError(f"describe_table {self.table}: {exc}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"describe_table {self.table}: {exc}") from exc
        template = schema.load_template()
        self._call("create_table", **schema.create_table_request(self.table, template))
        self.client.get_waiter("table_exists").wait(
            TableName=self.table, WaiterConfig={"Delay": 0.2, "MaxAttempts": 150}
        )
        ttl = schema.ttl_attribute(template)
        if ttl:
            # dynalite has no TTL: there, closed timers stay until removed by hand.
            with contextlib.suppress(ClientError):
                self.client.update_time_to_live(
                    TableName=self.table,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl},
                )


_memory_mock: Any = None


def _memory_client(region: str) -> Any:
    """A DynamoDB client on moto's in-process backend (the embedded default store)."""
    global _memory_mock
    if _memory_mock is None:
        from moto import mock_aws

        os.environ.setdefault("AWS_ACCESS_KEY_ID", "embedded")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "embedded")
        _memory_mock = mock_aws()
        _memory_mock.start()
    return boto3.client("dynamodb", region_name=region)


def open_store(url: str, *, create: bool | None = None) -> DynamoTimerStore:
    """Open a timer store by URL.

    * ``memory://[TABLE]`` — moto in this process: nothing persists (the embedded default);
    * ``http://HOST:PORT[/TABLE]`` — a DynamoDB-compatible endpoint (dynalite, Alternator);
    * ``dynamodb://[REGION]/TABLE`` — AWS DynamoDB with the usual credential chain.

    The table is created from ``template.yaml`` when missing, except on AWS (``create``
    overrides that).
    """
    parts = urlsplit(url)
    table = parts.path.strip("/") or "reclaim-timers"
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
    config = Config(
        retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=3, read_timeout=10
    )
    if parts.scheme == "memory":
        client = _memory_client(region)
        table = parts.netloc or table
        default_create = True
    elif parts.scheme in ("http", "https"):
        client = boto3.client(
            "dynamodb",
            endpoint_url=f"{parts.scheme}://{parts.netloc}",
            region_name=region,
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "local"),
            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
            config=config,
        )
        default_create = True
    elif parts.scheme == "dynamodb":
        client = boto3.client("dynamodb", region_name=parts.netloc or region, config=config)
        default_create = False
    else:
        raise ValueError(
            f"unknown store URL {url!r}: use memory://, http://HOST:PORT/TABLE or dynamodb:///TABLE"
        )
    store = DynamoTimerStore(client, table)
    if default_create if create is None else create:
        store.ensure_table()
    return store
