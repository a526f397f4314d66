"""Due-index cost: sweep 1,000 due timers stored among N pending vs among 1,000 pending.

Target: ratio <= 1.2, i.e. a sweep costs what is due, not what is stored (the sparse
``due`` index, 16 shards, queried up to ``now``). Two real dynalite servers (LevelDB on
disk, 127.0.0.1): one holds the 1,000 due timers alone (the baseline), the other the same
1,000 among N - 1,000 timers due 7 to 14 days later. Items are the store's own encoding
(``DynamoTimerStore._item`` of timers merged from the shelve rule's commands), written with
BatchWriteItem. The sweep uses a cloud port that answers at once, so the time measured is
the store side: breaker read, due-index queries, the mail ledger read of each timer's
delivered notice (one query: the sweeper acts only on a delivered warning), claims and
completions (2 conditional writes per timer). Samples alternate between the two stores; before each, the due timers
are written back as they were (a sweep closes them). Also printed: the ``query`` calls
each sweep made and the shelves the cloud port served (every due timer acted on).

N defaults to 100,000 because dynalite takes 1,200 to 1,700 items/s here (a 1,000,000-item
fill takes well over 10 minutes): ``SWEEP_BENCH_PENDING=1000000`` measures the full figure.
``SWEEP_BENCH_REPEATS`` (default 5) sets the samples per store.
"""

from __future__ import annotations

import statistics
import time
from datetime import timedelta
from typing import Any

from benchmarks.sweep_support import (
    NOW,
    PLACEHOLDER,
    DynaliteServer,
    InstantCloud,
    QueryCounter,
    batch_write,
    deliver,
    env_int,
    fake_id,
    since_days,
    timer_for,
    with_id,
)
from reclaim.policy.servers import SHELVE
from reclaim.settings import PolicySettings, SweepSettings
from reclaim.store import DynamoTimerStore
from reclaim.sweeper import RecordingNotices, Sweeper

DUE = 1_000
TEMPLATES = 1_000
PROJECT = "bench-project"
TABLE = "bench-timers"


def _templates(store: DynamoTimerStore) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Item templates: due ones (stopped 100 days ago, notices sent) and later ones
    (stopped within the last 6 days: first notice 1 to 7 days ahead), varied start times."""
    due, later = [], []
    for j in range(TEMPLATES):
        stopped = since_days(100) + timedelta(seconds=j)
        t = timer_for(
            SHELVE, PLACEHOLDER, stopped, project_id=PROJECT, user_id="u", sent_before=NOW
        )
        due.append(store.item_of(t.resource_type, t.resource_id, [t], 1))
        fresh = NOW - timedelta(days=6) * (j / TEMPLATES)
        later.append(
            store.item_of(
                "server",
                PLACEHOLDER,
                [timer_for(SHELVE, PLACEHOLDER, fresh, project_id=PROJECT, user_id="u")],
                1,
            )
        )
    return due, later


def _sweep(
    store: DynamoTimerStore, counter: QueryCounter, due_items: list[dict[str, Any]]
) -> tuple[float, int, int]:
    batch_write(store.client, store.table, due_items)  # re-arm the due timers
    cloud = InstantCloud(PROJECT, since_days(200))
    sweeper = Sweeper(
        store,
        cloud,
        RecordingNotices(),
        PolicySettings(),
        "bench",
        SweepSettings(max_actions=10 * DUE, max_actions_per_project=10 * DUE),
    )
    with counter.counting() as queries:
        start = time.perf_counter()
        report = sweeper.sweep(NOW)
        elapsed = time.perf_counter() - start
    done = report.counts()["done"]
    assert done == DUE == cloud.shelves, (report.counts(), cloud.shelves)
    return elapsed, queries[0], cloud.shelves


def main() -> None:
    pending = max(env_int("SWEEP_BENCH_PENDING", 100_000), DUE)
    repeats = env_int("SWEEP_BENCH_REPEATS", 5)
    with DynaliteServer() as small_db, DynaliteServer() as large_db:
        small, large = small_db.store(TABLE), large_db.store(TABLE)
        counters = {id(small): QueryCounter(small.client), id(large): QueryCounter(large.client)}
        due_t, later_t = _templates(small)
        due_items = [with_id(due_t[i % TEMPLATES], fake_id(i, 1)) for i in range(DUE)]
        started = time.perf_counter()
        batch_write(small.client, small.table, due_items)
        batch_write(large.client, large.table, due_items)
        for start in range(0, pending - DUE, 100_000):
            stop = min(start + 100_000, pending - DUE)
            chunk = [with_id(later_t[i % TEMPLATES], fake_id(i, 2)) for i in range(start, stop)]
            batch_write(large.client, large.table, chunk)
        fill = time.perf_counter() - started
        print(
            f"   filled {DUE:,} + {pending:,} items in {fill:.1f} s "
            f"({(pending + DUE) / fill:,.0f} items/s, BatchWriteItem, 2 threads)",
            flush=True,
        )
        records = deliver(small, due_items) + deliver(large, due_items)
        print(f"   recorded {records:,} delivered notices of the due timers (mail ledger)")
        samples: dict[str, list[float]] = {"small": [], "large": []}
        queries: dict[str, list[int]] = {"small": [], "large": []}
        shelves: dict[str, list[int]] = {"small": [], "large": []}
        for r in range(repeats):
            order = [("small", small), ("large", large)]
            for name, store in order if r % 2 == 0 else order[::-1]:
                elapsed, q, acted = _sweep(store, counters[id(store)], due_items)
                shelves[name].append(acted)
                samples[name].append(elapsed)
                queries[name].append(q)
        s, lg = statistics.median(samples["small"]), statistics.median(samples["large"])
    print(
        f"   sweep {DUE:,} due among {DUE:>9,} pending: median {s:.3f} s "
        f"({DUE / s:,.0f} timers/s), queries/sweep {sorted(set(queries['small']))}, "
        f"shelves/sweep {sorted(set(shelves['small']))}"
    )
    print(
        f"   sweep {DUE:,} due among {pending:>9,} pending: median {lg:.3f} s "
        f"({DUE / lg:,.0f} timers/s), queries/sweep {sorted(set(queries['large']))}, "
        f"shelves/sweep {sorted(set(shelves['large']))}"
    )
    print(f"   samples: small {_fmt(samples['small'])}; large {_fmt(samples['large'])}")
    print(f"   ratio {lg / s:.2f} (target <= 1.2)")


def _fmt(xs: list[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in xs)
