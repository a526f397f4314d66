"""Reconcile a simulated cloud of 1,000 and 10,000 servers that writes the store: time,
requests (cloud and store) and peak memory.

The simulated cloud runs in this process on real HTTP. Peak memory is ``tracemalloc``'s
peak during the reconcile alone (the cloud is built before it starts) and includes the
simulated cloud rendering each page. The store is, first, a real dynalite server (another
process), so that the peak is reclaim's own (with botocore's); then moto in this process,
whose table (and its bookkeeping of every key ever read) lives in the measured heap and so
grows with the cloud whatever reclaim does.

Every fifth server's store state is wrong at the start (its timers are what an older
reconcile left; the rest are missing), so a run creates, cancels and leaves timers alone.
"""

from __future__ import annotations

import os
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.sweep_support import count_requests
from reclaim.reconcile.engine import reconcile
from reclaim.settings import PolicySettings
from reclaim.store import DynamoTimerStore, open_store
from reclaim_sim import Cloud, SimClock, SimServer
from tests.support.dynalite import Dynalite

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
STATES = ("active", "active", "stopped", "suspended", "shelved_offloaded", "shelved", "paused")
SIZES = (1000, 10_000)


def _cloud(n: int) -> Cloud:
    cloud = Cloud(clock=SimClock(START))
    projects = [cloud.identity.create_project(f"bench-{i}") for i in range(50)]
    user = cloud.identity.create_user("bench-user")
    images = [
        cloud.image.create_image(
            owner=p.id,
            name=f"img-{i}",
            visibility=("private", "community", "public")[i % 3],
            os_hidden=i % 5 == 0,
            status="active",
        ).id
        for i, p in enumerate(projects)
    ]
    for i in range(n):
        cloud.compute.create_server(
            project_id=projects[i % 50].id,
            user_id=user.id,
            name=f"vm-{i}",
            image_id=images[i % 50],
            state=STATES[i % len(STATES)],
            updated_at=START - timedelta(days=i % 400, seconds=i),
        )
    return cloud


def _run(n: int, store: DynamoTimerStore) -> dict[str, Any]:
    cloud = _cloud(n)
    with SimServer(cloud) as server:
        conn = server.connect()
        conn.compute.get("/servers", params={"limit": 1})  # authenticate before measuring
        conn.image.get("/images", params={"limit": 1})
        # The store as a lossy history left it: a first reconcile of every fifth server's
        # state five days earlier (so some of those have moved on since).
        stale = {s for i, s in enumerate(sorted(cloud.compute.servers)) if i % 5 == 0}
        for sid in sorted(cloud.compute.servers):
            if sid not in stale:
                cloud.compute.servers[sid].vm_state = "active"
        reconcile(conn, store, PolicySettings(), START - timedelta(days=5))
        for i, sid in enumerate(sorted(cloud.compute.servers)):
            cloud.compute.servers[sid].vm_state = STATES[i % len(STATES)]
        before = len(list(cloud.requests))
        store_calls = count_requests(store)
        tracemalloc.start()
        started = time.perf_counter()
        report = reconcile(conn, store, PolicySettings(), START)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        requests = len(list(cloud.requests)) - before
    cloud.close()
    return {
        "servers": report.servers,
        "images": report.images,
        "drift": report.drift,
        "written": report.written,
        "seconds": elapsed,
        "requests": requests,
        "store": store_calls,
        "peak_mib": peak / 2**20,
    }


def _line(label: str, r: dict[str, Any]) -> str:
    store = ", ".join(f"{op} {k}" for op, k in sorted(r["store"].items()))
    return (
        f"   {label:<9}{r['servers']:>6} servers: {r['seconds']:6.1f} s, "
        f"peak {r['peak_mib']:5.1f} MiB, cloud {r['requests']} requests, "
        f"drift {r['drift']}, {r['written']} written; store: {store}"
    )


def main() -> None:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    sizes = tuple(int(s) for s in os.environ.get("RECLAIM_BENCH_SIZES", "").split(",") if s)
    with tempfile.TemporaryDirectory() as tmp:
        dynalite = Dynalite(Path(tmp)).start()
        try:
            for n in sizes or SIZES:
                store = open_store(f"{dynalite.url}/bench-reconcile-{n}")
                print(_line("dynalite", _run(n, store)), flush=True)
        finally:
            dynalite.stop()
    n = max(sizes or SIZES)
    print(_line("moto", _run(n, open_store(f"memory://bench-reconcile-{n}"))), flush=True)
