"""Shared parts of the sweep benchmarks: a dynalite server, ready-made timer items, a cloud
port that answers at once. Not a benchmark itself (no ``main``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3

from reclaim.commands import Rule
from reclaim.models.neutron import SecurityGroupRule
from reclaim.policy.servers import SHELVE
from reclaim.settings import PolicySettings
from reclaim.store import DynamoTimerStore
from reclaim.sweeper import ActionResult, ServerSnapshot
from reclaim.sweeper.cloud import (
    CleanupResult,
    Exemption,
    ServerRef,
    Spared,
)
from reclaim.sweeper.rules import ImageSnapshot, ProjectSnapshot
from reclaim.timers import Timer, mark_notice_sent, merge
from tests.support.delivery import record_delivered
from tests.support.dynalite import Dynalite

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
#: A resource id the item templates carry, replaced by each item's own (same length).
PLACEHOLDER = "00000000-0000-4000-8000-000000000000"


def env_int(name: str, default: int) -> int:
    """An integer setting from the environment (benchmarks scale up through these)."""
    return int(os.environ.get(name, str(default)))


def fake_id(n: int, tag: int = 0) -> str:
    """A uuid-shaped id, distinct per ``(n, tag)``, as long as :data:`PLACEHOLDER`."""
    return f"{n:08x}-{tag:04x}-4000-8000-000000000000"


class DynaliteServer(Dynalite):
    """A dynalite process on 127.0.0.1 (LevelDB in a temporary folder unless ``in_memory``);
    a context manager that stops it and removes its data."""

    def __init__(self, *, in_memory: bool = False) -> None:
        path = None if in_memory else Path(tempfile.mkdtemp(prefix="reclaim-bench-dynalite-"))
        super().__init__(path)

    def __enter__(self) -> DynaliteServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)

    def client(self) -> Any:
        return boto3.client(
            "dynamodb",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def store(self, table: str) -> DynamoTimerStore:
        """A store on a new table of this server, created from ``template.yaml``."""
        store = DynamoTimerStore(self.client(), table)
        store.ensure_table()
        return store


def timer_for(
    rule: Rule,
    resource_id: str,
    since: datetime,
    *,
    project_id: str,
    user_id: str,
    sent_before: datetime | None = None,
    policy: PolicySettings | None = None,
) -> Timer:
    """The timer the policy keeps for ``rule`` on a server that entered its state at ``since``
    (merged from the rule's schedule commands, as the store does). Notices due before
    ``sent_before`` are marked sent at their due time: earlier sweeps sent them (record
    their delivery with :func:`deliver`, or the sweeper holds the action)."""
    policy = policy or PolicySettings()
    shelve = rule.id == SHELVE.id
    delay = policy.shelve_after if shelve else policy.delete_shelved_after
    offsets = policy.shelve_notices if shelve else policy.delete_notices
    commands = rule.schedule(
        resource_id,
        since=since,
        delay=delay,
        event_time=since,
        notices=rule.notices_before(offsets),
        project_id=project_id,
        user_id=user_id,
        detail={"state": "stopped" if shelve else "shelved_offloaded"},
    )
    timer = merge(None, commands)
    assert timer is not None
    timer = timer.model_copy(update={"version": 1})
    if sent_before is not None:
        for notice in timer.notices:
            if notice.due_at < sent_before:
                timer = mark_notice_sent(timer, notice, notice.due_at)
    return timer


def with_id(template: dict[str, Any], resource_id: str) -> dict[str, Any]:
    """A copy of an item made from a :data:`PLACEHOLDER` timer, now for ``resource_id``:
    key, id, due-index shard and document all changed together."""
    from reclaim.store.dynamodb import shard_of

    item = dict(template)
    pk = f"{template['resource_type']['S']}#{resource_id}"
    item["pk"] = {"S": pk}
    item["resource_id"] = {"S": resource_id}
    item["doc"] = {"S": template["doc"]["S"].replace(PLACEHOLDER, resource_id)}
    if "due_shard" in template:
        item["due_shard"] = {"S": shard_of(pk)}
    return item


def deliver(store: DynamoTimerStore, items: Sequence[dict[str, Any]], threads: int = 4) -> int:
    """Record in the mail ledger every notice the items' timers mark sent as accepted by the
    SMTP server when it was sent (as the mailer does; the sweeper acts only on a delivered
    warning), from a few threads. Returns the records written."""
    from reclaim.store.dynamodb import decode_item

    timers = [t for item in items for t in decode_item(item).timers.values()]
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda t: record_delivered(store, t), timers))
    return sum(1 for t in timers for n in t.notices if n.sent_at is not None)


def batch_write(client: Any, table: str, items: Sequence[dict[str, Any]], threads: int = 2) -> None:
    """Write items with BatchWriteItem (25 a request) from a few threads, retrying the
    unprocessed ones."""

    def worker(part: Sequence[dict[str, Any]]) -> None:
        for start in range(0, len(part), 25):
            request: dict[str, Any] = {
                table: [{"PutRequest": {"Item": i}} for i in part[start : start + 25]]
            }
            while request:
                request = client.batch_write_item(RequestItems=request).get("UnprocessedItems")

    if threads <= 1 or len(items) < 1000:
        worker(items)
        return
    size = -(-len(items) // threads)
    workers = [
        threading.Thread(target=worker, args=(items[k * size : (k + 1) * size],))
        for k in range(threads)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def count_requests(store: DynamoTimerStore) -> Counter[str]:
    """Counts the store's DynamoDB requests by operation from now on (botocore events)."""
    calls: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    store.client.meta.events.register("before-call.dynamodb", count)
    return calls


class QueryCounter:
    """Counts the ``query`` calls made through a boto3 client (wraps the method in place)."""

    def __init__(self, client: Any) -> None:
        self.calls = 0
        self._lock = threading.Lock()
        inner = client.query

        def query(**kwargs: Any) -> Any:
            with self._lock:
                self.calls += 1
            return inner(**kwargs)

        client.query = query

    @contextlib.contextmanager
    def counting(self) -> Iterator[list[int]]:
        """Yields a one-element list that holds the calls made inside the block, after it."""
        out = [0]
        before = self.calls
        try:
            yield out
        finally:
            out[0] = self.calls - before


class InstantCloud:
    """A :class:`~reclaim.sweeper.cloud.CloudPort` that answers at once: every server has been
    stopped since long ago in project ``project_id``; every action succeeds. A shelve is
    finished at once: the next read of that server shows it shelved (the sweeper's check of
    its action), later reads stopped again (as if its owner had unshelved and stopped it, so
    a benchmark can re-arm the same timers)."""

    def __init__(self, project_id: str, stopped_at: datetime) -> None:
        self.project_id = project_id
        self.stopped_at = stopped_at
        self._shelved: set[str] = set()
        self._lock = threading.Lock()
        #: Shelve requests served.
        self.shelves = 0

    def server(self, server_id: str) -> ServerSnapshot | None:
        with self._lock:
            shelved = server_id in self._shelved
            self._shelved.discard(server_id)
        return ServerSnapshot(
            id=server_id,
            status="SHELVED_OFFLOADED" if shelved else "SHUTOFF",
            project_id=self.project_id,
            updated_at=self.stopped_at,
            locked=False,
            vm_state="shelved_offloaded" if shelved else "stopped",
        )

    def shelve_server(self, server_id: str) -> ActionResult:
        with self._lock:
            self._shelved.add(server_id)
            self.shelves += 1
        return ActionResult(("req-bench",))

    def delete_server(self, server_id: str) -> ActionResult:
        return ActionResult(("req-bench",))

    def project(self, project_id: str) -> ProjectSnapshot | None:
        return ProjectSnapshot(id=project_id, name=project_id, enabled=True)

    def user_exists(self, user_id: str) -> bool:
        return False

    def image(self, image_id: str) -> ImageSnapshot | None:
        return None

    def owner_images(self, owner_type: str, owner_id: str) -> list[ImageSnapshot]:
        return []

    def servers_from_image(self, image_id: str) -> list[ServerRef]:
        return []

    def image_members(self, image_id: str) -> list[str]:
        return []

    def delete_image(self, image_id: str) -> ActionResult:
        return ActionResult(("req-bench",))

    def security_group_rule(self, rule_id: str) -> SecurityGroupRule | None:
        return None

    def delete_security_group_rule(self, rule_id: str) -> ActionResult:
        return ActionResult(("req-bench",))

    def project_inventory(self, project_id: str) -> dict[str, list[str]]:
        return {}

    def spared(self, project_id: str, exempt: Exemption) -> Spared:
        return Spared()

    def cleanup_project(
        self, project_id: str, *, dry_run: bool, exempt: Exemption | None = None
    ) -> CleanupResult:
        return CleanupResult(dry_run=dry_run)


def since_days(days: float) -> datetime:
    """``NOW`` minus ``days`` days."""
    return NOW - timedelta(days=days)
