"""Sweep cost reads O(due), not O(pending): 1,000 due timers among N pending vs among 1,000.

The store is moto in-process (writing 1,000,000 items to dynalite one request per 25 takes
far too long on one machine); the sweep uses a cloud port that answers at once, so what is
measured is the store side: the due-index queries, the claims and the completions.
``SWEEP_BENCH_PENDING`` sets N (default 1,000,000).
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from reclaim.settings import PolicySettings, SweepSettings
from reclaim.store import DynamoTimerStore, open_store
from reclaim.sweeper import ActionResult, RecordingNotices, ServerSnapshot, Sweeper
from reclaim.timers import Timer

NOW = datetime(2026, 3, 1, tzinfo=UTC)
DUE = 1_000


class InstantCloud:
    """Every server is stopped since long ago; actions succeed at once."""

    def server(self, server_id: str) -> ServerSnapshot:
        return ServerSnapshot(
            id=server_id,
            status="SHUTOFF",
            project_id="p",
            updated_at=NOW - timedelta(days=100),
            locked=False,
            vm_state="stopped",
        )

    def shelve_server(self, server_id: str) -> ActionResult:
        return ActionResult(("req-bench",))

    def delete_server(self, server_id: str) -> ActionResult:
        return ActionResult(("req-bench",))


def _timer(due: bool) -> Timer:
    since = NOW - timedelta(days=100 if due else 1)
    return Timer(
        resource_type="server",
        resource_id=str(uuid.uuid4()),
        rule="shelve",
        action="shelve",
        project_id="p",
        since=since,
        due_at=since + timedelta(days=14),
        version=1,
    )


def _fill(store: DynamoTimerStore, pending: int) -> list[Timer]:
    due = [_timer(True) for _ in range(DUE)]
    rest = (_timer(False) for _ in range(pending - DUE))
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        if batch:
            store.client.batch_write_item(RequestItems={store.table: list(batch)})
            batch.clear()

    for t in [*due, *rest]:
        batch.append({"PutRequest": {"Item": store._item(t)}})
        if len(batch) == 25:
            flush()
    flush()
    return due


def _run(pending: int, repeats: int) -> list[float]:
    times: list[float] = []
    for _ in range(repeats):
        store = open_store(f"memory://bench-{uuid.uuid4().hex[:8]}")
        due = _fill(store, pending) if not times else None
        if due is None:
            break
        sweeper = Sweeper(
            store,
            InstantCloud(),
            RecordingNotices(),
            PolicySettings(),
            "bench",
            SweepSettings(max_actions=10 * DUE, max_actions_per_project=10 * DUE, parallelism=8),
        )
        start = time.perf_counter()
        report = sweeper.sweep(NOW)
        times.append(time.perf_counter() - start)
        assert report.counts()["done"] == DUE, report.counts()
        # the same timers again, re-armed: further samples without refilling
        for _ in range(repeats - 1):
            for t in due:
                stored = store.timers_for("server", t.resource_id)[0]
                store.replace(stored, t.model_copy(update={"history": ()}))
            start = time.perf_counter()
            report = sweeper.sweep(NOW)
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    pending = int(os.environ.get("SWEEP_BENCH_PENDING", "1000000"))
    repeats = int(os.environ.get("SWEEP_BENCH_REPEATS", "3"))
    t0 = time.perf_counter()
    small = statistics.median(_run(DUE, repeats))
    fill = time.perf_counter()
    large = statistics.median(_run(pending, repeats))
    print(f"   fill+sweep wall: {fill - t0:.1f} s and {time.perf_counter() - fill:.1f} s")
    print(
        f"   sweep {DUE} due among {DUE:>9,} pending: median {small:.3f} s ({DUE / small:,.0f} timers/s)"
    )
    print(
        f"   sweep {DUE} due among {pending:>9,} pending: median {large:.3f} s ({DUE / large:,.0f} timers/s)"
    )
    print(f"   ratio {large / small:.2f} (target <= 1.2)")
