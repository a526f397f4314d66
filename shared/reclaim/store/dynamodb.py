"""The timer store on any DynamoDB-compatible endpoint: AWS, ScyllaDB Alternator, dynalite, moto.

Layout (the table is defined in ``template.yaml``): one item per resource, with
``pk = "<resource_type>#<resource_id>"`` and ``sk = "timers"``; its timers (one per rule)
are the JSON list ``doc``; ``version`` guards every write; ``closed_all`` is the time of
the latest wildcard cancel (a deleted image), which also closes rules that arrive after it
out of order. An event that touches several rules of a resource (a server that stops
starts the shelve rule and closes the delete-shelved one) therefore costs one conditional
write, not one per rule. An item with pending work also carries ``due_shard``/``next_due``
(its earliest due notice or action), the keys of the sparse ``due`` index. How commands
fold into a resource's timers is pure: :func:`reclaim.timers.fold_resource`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import itertools
import logging
import os
import threading
import zlib
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError
from pydantic import TypeAdapter, ValidationError

from reclaim.commands import TimerCommand
from reclaim.redact import scrub_text
from reclaim.store import schema
from reclaim.store.port import ApplyResult
from reclaim.timers import Timer, fold_resource

DUE_INDEX = "due"
SHARDS = 16
#: The sort key of a resource's item (the table's key schema has one; a resource has one item).
TIMERS_SK = "timers"
#: Closed timers stay readable (audit) this long after their last event, then expire.
RETENTION = timedelta(days=400)
MAX_RETRIES = 8
#: Items a store keeps in memory as last read or written (see ``replace``).
RECENT_ITEMS = 4096

_TIMERS = TypeAdapter(list[Timer])
Key = tuple[str, str, str]
#: The attribute that records when an unreadable item was reported to operators.
REPORTED = "unreadable_reported_at"

log = logging.getLogger("reclaim.store")


class StoreError(RuntimeError):
    """The store could not be read or written; nothing was half-applied."""

    @property
    def rejected(self) -> bool:
        """The store refused the request itself (an item over DynamoDB's size limit, say):
        the same write fails every time, unlike an outage or throttling."""
        cause = self.__cause__
        if isinstance(cause, ParamValidationError):
            return True
        code = (
            cause.response.get("Error", {}).get("Code") if isinstance(cause, ClientError) else None
        )
        return code in ("ValidationException", "ItemCollectionSizeLimitExceededException")


def _due_key(when: datetime) -> str:
    # Fixed width so that string order is time order.
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def shard_of(pk: str) -> str:
    """The due-index shard of a partition key: stable, spread evenly."""
    return f"{zlib.crc32(pk.encode()) % SHARDS:02d}"


def _pk(resource_type: str, resource_id: str) -> str:
    return f"{resource_type}#{resource_id}"


@dataclasses.dataclass(frozen=True, slots=True)
class _Stored:
    """A resource's item as read: its version, its timers by rule, its wildcard cancel."""

    version: int
    timers: dict[str, Timer]
    closed_all: datetime | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Unreadable:
    """A stored resource item that does not decode: skipped by every read, kept as it is.

    ``key`` is its partition key (``<resource_type>#<resource_id>``), ``reason`` what is
    wrong with it, ``reported`` whether operators were alerted (the item carries
    :data:`REPORTED`), ``seen`` the store's read count when it was last met.
    """

    key: str
    reason: str
    reported: bool
    seen: int = 0


def why_unreadable(exc: Exception) -> str:
    """What is wrong with an item, in one line, without the values it holds. Pure."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "doc"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return f"doc: {where}: {first.get('msg', 'invalid')}{more}"
    if isinstance(exc, KeyError):
        return f"missing attribute {exc.args[0]!r}" if exc.args else "missing attribute"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return scrub_text(f"{type(exc).__name__}: {text}"[:300])


def decode_item(item: dict[str, Any]) -> _Stored:
    """A resource's item as stored: its version, timers and wildcard cancel. Pure; raises
    (ValueError, KeyError, TypeError...) when any part of it does not decode, including the
    due index key ``next_due`` and each timer's next due time."""
    timers = _TIMERS.validate_json(item["doc"]["S"])
    closed_all = item.get("closed_all")
    stored = _Stored(
        int(item["version"]["N"]),
        {t.rule: t for t in timers},
        datetime.fromisoformat(closed_all["S"]) if closed_all else None,
    )
    if "next_due" in item:
        _aware(datetime.fromisoformat(item["next_due"]["S"]))
    for t in timers:
        _aware(t.next_due())
    return stored


def _aware(when: datetime | None) -> None:
    # Due times are compared with each other and with now: all must be aware and in range.
    if when is not None:
        when.astimezone(UTC)


def _due_timers(
    timers: Iterable[Timer], due_before: datetime | None
) -> list[tuple[datetime, Key, Timer]]:
    out = []
    for t in timers:
        due = t.next_due()
        if due is not None and (due_before is None or due <= due_before):
            out.append((due, t.key, t))
    return out


def _fold(old: _Stored | None, commands: Sequence[TimerCommand]) -> tuple[_Stored | None, int, int]:
    """A resource's item after a batch's commands: (new item or None if unchanged, timers
    changed, timers touched). Pure (see :func:`reclaim.timers.fold_resource`)."""
    before_all = old.closed_all if old is not None else None
    timers, closed_all, changed, touched = fold_resource(
        old.timers if old is not None else {}, before_all, commands
    )
    if not changed and closed_all == before_all:
        return None, 0, touched
    version = old.version + 1 if old is not None else 1
    return _Stored(version, timers, closed_all), changed, touched


def _gather(futures: Sequence[Future[ApplyResult]]) -> list[ApplyResult]:
    """Every result, once all have finished; the first failure as a StoreError."""
    results: list[ApplyResult] = []
    failure: BaseException | None = None
    for f in futures:
        try:
            results.append(f.result())
        except BaseException as exc:
            failure = failure or exc
    if isinstance(failure, StoreError):
        raise failure
    if failure is not None:
        raise StoreError(f"applying commands: {type(failure).__name__}: {failure}") from failure
    return results


class DynamoTimerStore:
    """:class:`reclaim.store.port.TimerStore` on a DynamoDB client (injected)."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table
        # The items last read or written, by pk: a sweeper's claim of a timer it just read
        # from the due index writes without reading the item again (the write is
        # conditional on the version, so a stale entry only costs that read after all).
        self._recent: dict[str, _Stored] = {}
        self._lock = threading.Lock()
        self._unreadable: dict[str, Unreadable] = {}
        self._reads = itertools.count(1)

    # -- encoding -------------------------------------------------------------------
    def item_of(
        self,
        resource_type: str,
        resource_id: str,
        timers: Sequence[Timer],
        version: int,
        closed_all: datetime | None = None,
    ) -> dict[str, Any]:
        """The item of one resource's timers at ``version``."""
        pk = _pk(resource_type, resource_id)
        stamped = sorted(
            (
                t if t.version == version else t.model_copy(update={"version": version})
                for t in timers
            ),
            key=lambda t: t.rule,
        )
        item: dict[str, Any] = {
            "pk": {"S": pk},
            "sk": {"S": TIMERS_SK},
            "resource_type": {"S": resource_type},
            "resource_id": {"S": resource_id},
            "version": {"N": str(version)},
            "doc": {"S": _TIMERS.dump_json(stamped).decode()},
        }
        if closed_all is not None:
            item["closed_all"] = {"S": _due_key(closed_all)}
        project = next((t.project_id for t in timers if t.project_id), None)
        if project:
            item["project_id"] = {"S": project}
        dues = [d for t in timers if (d := t.next_due()) is not None]
        if dues:
            item["due_shard"] = {"S": shard_of(pk)}
            item["next_due"] = {"S": _due_key(min(dues))}
        else:
            lasts = [t.last_event_at for t in timers if t.last_event_at is not None]
            lasts += [closed_all] if closed_all is not None else []
            if lasts:
                item["expires_at"] = {"N": str(int((max(lasts) + RETENTION).timestamp()))}
        return item

    def _stored(self, item: dict[str, Any]) -> _Stored | None:
        """The item decoded, or None when it does not decode: then it is skipped, counted
        and logged once (see :meth:`unreadable`), and every other item is read as usual."""
        pk = str(item.get("pk", {}).get("S", "?"))
        try:
            stored = decode_item(item)
        except Exception as exc:
            self._skip(pk, item, exc)
            return None
        self._remember(pk, stored)
        return stored

    def _skip(self, pk: str, item: dict[str, Any], exc: Exception) -> None:
        reason = why_unreadable(exc)
        with self._lock:
            known = self._unreadable.get(pk)
            self._unreadable[pk] = Unreadable(pk, reason, REPORTED in item, next(self._reads))
        if known is None:
            log.warning(
                "stored item %s is unreadable (%s): skipped; see reclaim store quarantine show %s",
                pk,
                reason,
                pk,
            )

    def read_mark(self) -> int:
        """A mark of this store's reads so far, for :meth:`unreadable` (``since``)."""
        with self._lock:
            return next(self._reads)

    def unreadable(self, since: int = 0) -> list[Unreadable]:
        """The items reads skipped because they do not decode (met after ``since``, a
        :meth:`read_mark`), by key. An item read fine later is no longer listed."""
        with self._lock:
            return sorted(
                (u for u in self._unreadable.values() if u.seen > since), key=lambda u: u.key
            )

    def _remember(self, pk: str, stored: _Stored) -> None:
        if len(self._recent) >= RECENT_ITEMS:
            self._recent.clear()
        self._recent[pk] = stored
        if pk in self._unreadable:
            with self._lock:
                self._unreadable.pop(pk, None)

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
    def _get(self, pk: str) -> dict[str, Any] | None:
        out = self._call(
            "get_item",
            TableName=self.table,
            Key={"pk": {"S": pk}, "sk": {"S": TIMERS_SK}},
            ConsistentRead=True,
        )
        item: dict[str, Any] | None = out.get("Item")
        return item

    def _read(self, pk: str) -> _Stored | None:
        """A resource's item; None when it has none, or one that does not decode."""
        item = self._get(pk)
        return None if item is None else self._stored(item)

    def _read_many(self, pks: Sequence[str], skipped: set[str] | None = None) -> dict[str, _Stored]:
        """Read many resources' items in BatchGetItem calls of 100 (consistent reads); the
        keys of items that do not decode go to ``skipped``."""
        found: dict[str, _Stored] = {}
        for start in range(0, len(pks), 100):
            request: dict[str, Any] = {
                self.table: {
                    "Keys": [
                        {"pk": {"S": pk}, "sk": {"S": TIMERS_SK}} for pk in pks[start : start + 100]
                    ],
                    "ConsistentRead": True,
                }
            }
            while request:
                out = self._call("batch_get_item", RequestItems=request)
                for item in out.get("Responses", {}).get(self.table, []):
                    stored = self._stored(item)
                    if stored is not None:
                        found[item["pk"]["S"]] = stored
                    elif skipped is not None:
                        skipped.add(item["pk"]["S"])
                request = out.get("UnprocessedKeys") or {}
        return found

    def get_many(self, keys: Sequence[Key]) -> dict[Key, Timer]:
        """The stored timers of many (resource_type, resource_id, rule) keys, by key.

        One BatchGetItem call per 100 resources, consistent reads; keys without a timer
        are left out.
        """
        wanted = list(dict.fromkeys(keys))
        items = self._read_many(list(dict.fromkeys(_pk(k[0], k[1]) for k in wanted)))
        found: dict[Key, Timer] = {}
        for rtype, rid, rule in wanted:
            stored = items.get(_pk(rtype, rid))
            if stored is not None and rule in stored.timers:
                found[(rtype, rid, rule)] = stored.timers[rule]
        return found

    def timers_for(self, resource_type: str, resource_id: str) -> list[Timer]:
        """Every timer of one resource (one read of its item), ordered by rule."""
        stored = self._read(_pk(resource_type, resource_id))
        return [] if stored is None else [stored.timers[r] for r in sorted(stored.timers)]

    def ids_starting(self, resource_type: str, prefix: str) -> list[str]:
        """The ids of the resources of ``resource_type`` with timers that start with
        ``prefix``, sorted: a scan of the table, for a person abbreviating an id."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "ProjectionExpression": "pk",
            "FilterExpression": "begins_with(pk, :p)",
            "ExpressionAttributeValues": {":p": {"S": _pk(resource_type, prefix)}},
        }
        found: set[str] = set()
        while True:
            out = self._call("scan", **kwargs)
            found.update(item["pk"]["S"].split("#", 1)[1] for item in out.get("Items", []))
            if "LastEvaluatedKey" not in out:
                return sorted(found)
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def _index_pages(
        self, shard: str, due_before: datetime | None, limit: int | None
    ) -> Iterator[list[dict[str, Any]]]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": DUE_INDEX,
            "KeyConditionExpression": "due_shard = :s"
            + (" AND next_due <= :d" if due_before is not None else ""),
            "ExpressionAttributeValues": {":s": {"S": shard}},
        }
        if due_before is not None:
            kwargs["ExpressionAttributeValues"][":d"] = {"S": _due_key(due_before)}
        if limit is not None:
            kwargs["Limit"] = limit
        while True:
            out = self._call("query", **kwargs)
            yield out.get("Items", [])
            if "LastEvaluatedKey" not in out:
                return
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def _shard(
        self, shard: str, due_before: datetime | None
    ) -> Iterator[tuple[datetime, Key, Timer]]:
        """A shard's due timers in due order.

        The index orders items by their earliest due work; an item's other timers may fall
        due later, so they wait in a heap until the index has passed their time.
        """
        waiting: list[tuple[datetime, Key, Timer]] = []
        for page in self._index_pages(shard, due_before, None):
            for item in page:
                stored = self._stored(item)
                if stored is None:
                    continue
                floor = datetime.fromisoformat(item["next_due"]["S"])
                while waiting and waiting[0][:2] <= (floor, ("", "", "")):
                    yield heapq.heappop(waiting)
                for entry in _due_timers(stored.timers.values(), due_before):
                    heapq.heappush(waiting, entry)
        while waiting:
            yield heapq.heappop(waiting)

    def pending(self, due_before: datetime | None = None) -> Iterator[Timer]:
        """Pending timers with work due before ``due_before``, merged across shards in due order.

        Reads only the due index (sparse: it holds resources with pending timers alone),
        never the table.
        """
        shards = [self._shard(f"{n:02d}", due_before) for n in range(SHARDS)]
        for _, _, timer in heapq.merge(*shards, key=lambda x: (x[0], x[1])):
            yield timer

    def pending_pages(self, page_size: int = 100) -> Iterator[list[Timer]]:
        """Every pending timer, shard by shard, a page of at most ``page_size`` resources at a
        time; no due order.

        A pass over all pending work in memory flat in the size of the table (the
        reconcile's search for timers of resources that are gone): :meth:`pending` holds a
        result page (up to 1 MB) of every shard at once to merge them in due order.
        """
        for n in range(SHARDS):
            for items in self._index_pages(f"{n:02d}", None, page_size):
                page = [
                    t
                    for item in items
                    if (stored := self._stored(item)) is not None
                    for t in stored.timers.values()
                    if t.next_due() is not None
                ]
                if page:
                    yield page

    # -- writes ---------------------------------------------------------------------
    def _put(self, pk: str, old: _Stored | None, new: _Stored) -> bool:
        """Write the resource's item if it is still as read (absent, or ``old``)."""
        rtype, rid = pk.split("#", 1)
        item = self.item_of(rtype, rid, list(new.timers.values()), new.version, new.closed_all)
        kwargs: dict[str, Any] = {"TableName": self.table, "Item": item}
        if old is None:
            kwargs["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            kwargs["ConditionExpression"] = "#v = :v"
            kwargs["ExpressionAttributeValues"] = {":v": {"N": str(old.version)}}
            kwargs["ExpressionAttributeNames"] = {"#v": "version"}
        try:
            self._call("put_item", **kwargs)
        except ClientError:
            self._recent.pop(pk, None)
            return False
        self._remember(pk, new)
        return True

    def replace(self, old: Timer, new: Timer) -> Timer | None:
        """Compare-and-set: store ``new`` only if the stored timer is still ``old``.

        The resource's other timers may change meanwhile (a sweeper's other threads claim a
        project's other due timers; an event moves another rule): each such write bumps the
        item's version and refuses this conditional write, which then reads the item again
        and retries as long as this rule's timer is still ``old``. It starts from the item
        last read (the due index's page), so a claim costs one write and no read.
        """
        pk = _pk(old.resource_type, old.resource_id)
        stored = self._recent.get(pk)
        fresh = False
        for _ in range(MAX_RETRIES):
            if stored is None:
                stored, fresh = self._read(pk), True
                if stored is None:
                    return None
            current = stored.timers.get(old.rule)
            if current is None or current.model_copy(update={"version": old.version}) != old:
                if fresh:
                    return None  # this rule's timer itself moved on
                stored = None  # the copy kept in memory is older than ``old``: read it
                continue
            result = new.model_copy(update={"version": stored.version + 1})
            after = dataclasses.replace(
                stored, version=result.version, timers={**stored.timers, old.rule: result}
            )
            if self._put(pk, stored, after):
                return result
            stored = None  # another write of the resource came first: read it again
        return None

    def apply(
        self, commands: Sequence[TimerCommand], *, writers: Executor | None = None
    ) -> ApplyResult:
        """Fold commands into the stored timers, one conditional write per changed resource.

        Commands for the same resource collapse into one write; the batch's items are read
        at once (BatchGetItem, 100 a call). With ``writers`` the resources' writes run on
        that executor, each resource on one worker. A wildcard cancel (rule ``*``) applies
        to every timer the resource has, stored or about to be by this same batch.
        """
        by_resource: dict[str, list[TimerCommand]] = {}
        for c in commands:
            by_resource.setdefault(_pk(c.resource_type, c.resource_id), []).append(c)
        skipped: set[str] = set()
        current = self._read_many(list(by_resource), skipped)

        def write(pk: str) -> ApplyResult:
            # An item that does not decode is left as it is for an operator to look at
            # (reclaim store quarantine); its resource's commands wait for a reconcile.
            if pk in skipped:
                return ApplyResult(unreadable=len(by_resource[pk]))
            old = current.get(pk)
            for retries in range(MAX_RETRIES):
                new, changed, groups = _fold(old, by_resource[pk])
                if new is None:
                    return ApplyResult(unchanged=groups, retries=retries)
                if self._put(pk, old, new):
                    return ApplyResult(changed, groups - changed, retries)
                item = self._get(pk)  # somebody wrote it first: merge into theirs
                old = None if item is None else self._stored(item)
                if item is not None and old is None:
                    return ApplyResult(unreadable=len(by_resource[pk]), retries=retries)
            raise StoreError(f"{pk}: gave up after {MAX_RETRIES} conflicting writes")

        if writers is None or len(by_resource) < 2:
            results = [write(pk) for pk in by_resource]
        else:
            results = _gather([writers.submit(write, pk) for pk in by_resource])
        return ApplyResult(
            written=sum(r.written for r in results),
            unchanged=sum(r.unchanged for r in results),
            retries=sum(r.retries for r in results),
            unreadable=sum(r.unreadable for r in results),
        )

    # -- table ----------------------------------------------------------------------
    def _exists(self) -> bool:
        try:
            self.client.describe_table(TableName=self.table)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise StoreError(f"describe_table {self.table}: {exc}") from exc
            return False
        except BotoCoreError as exc:
            raise StoreError(f"describe_table {self.table}: {exc}") from exc
        return True

    def require_table(self) -> None:
        """A :class:`StoreError` unless the table exists: a mistyped table name must not
        read as a store with no timers."""
        if not self._exists():
            raise StoreError(
                f"no table {self.table!r} at this endpoint: check the store URL's table name "
                "(reclaim listen, run, replay and reconcile create it)"
            )

    def ensure_table(self) -> None:
        """Create the table from ``template.yaml`` if it does not exist (dev endpoints)."""
        if self._exists():
            return
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


class _OneAtATime:
    """A client whose calls run one at a time, for moto's in-process backend.

    moto checks a write's condition and stores the item in two separate steps, so two
    threads (the listener's writers, two sweepers) could both pass the same condition;
    DynamoDB and dynalite check and write atomically. One lock per process: moto keeps
    one backend per process.
    """

    _lock = threading.RLock()

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attr(*args, **kwargs)

        return call


def _memory_client(region: str) -> Any:
    """A DynamoDB client on moto's in-process backend (the embedded default store)."""
    global _memory_mock
    if _memory_mock is None:
        from moto import mock_aws

        os.environ.setdefault("AWS_ACCESS_KEY_ID", "embedded")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "embedded")
        _memory_mock = mock_aws()
        _memory_mock.start()
    return _OneAtATime(boto3.client("dynamodb", region_name=region))


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
