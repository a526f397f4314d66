"""Reconcile a simulated cloud of 10,000 servers: time, API requests and peak memory.

The simulated cloud runs in this process on real HTTP; the store is moto (in-process).
Peak memory is ``tracemalloc``'s peak during the reconcile alone, and includes the
simulated cloud rendering each page. A dry run writes nothing, so its peak is the
reconcile's own; a real run also holds the written timers in moto, which is the store's
memory, not the reconcile's. Baseline: listing 1,000 servers as openstacksdk ``Server``
resources, the way the reconcile does not read them.
"""

from __future__ import annotations

import os
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any

from reclaim.reconcile.engine import reconcile
from reclaim.settings import PolicySettings
from reclaim.sim import Cloud, SimClock, SimServer
from reclaim.store import open_store

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
STATES = ("active", "active", "stopped", "suspended", "shelved_offloaded", "shelved", "paused")


def _cloud(n: int) -> Cloud:
    cloud = Cloud(clock=SimClock(START))
    projects = [cloud.identity.create_project(f"bench-{i}") for i in range(50)]
    user = cloud.identity.create_user("bench-user")
    images = [
        cloud.image.create_image(owner=p.id, name="img", visibility="private", status="active").id
        for p in projects
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


def _run(n: int, *, dry_run: bool) -> dict[str, Any]:
    cloud = _cloud(n)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    store = open_store(f"memory://bench-reconcile-{n}-{dry_run}")
    with SimServer(cloud) as server:
        conn = server.connect()
        conn.compute.get("/servers", params={"limit": 1})  # authenticate before measuring
        before = len(list(cloud.requests))
        tracemalloc.start()
        started = time.perf_counter()
        report = reconcile(conn, store, PolicySettings(), START, dry_run=dry_run)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        requests = len(list(cloud.requests)) - before
    cloud.close()
    return {
        "servers": report.servers,
        "drift": report.drift,
        "written": report.written,
        "seconds": elapsed,
        "requests": requests,
        "peak_mib": peak / 2**20,
    }


def _sdk_baseline(n: int) -> float:
    cloud = _cloud(n)
    with SimServer(cloud) as server:
        conn = server.connect()
        list(conn.compute.servers(all_projects=True, limit=1))
        started = time.perf_counter()
        count = sum(1 for _ in conn.compute.servers(all_projects=True, details=True))
        elapsed = time.perf_counter() - started
    cloud.close()
    assert count == n
    return elapsed


def main() -> None:
    base = _sdk_baseline(1000)
    print(f"   baseline: list 1,000 servers as openstacksdk Server resources: {base:.2f} s")
    for n in (1000, 10_000):
        r = _run(n, dry_run=True)
        print(
            f"   dry run  {n:>6} servers: {r['seconds']:6.1f} s, {r['requests']:3d} API requests, "
            f"peak {r['peak_mib']:.1f} MiB, drift {r['drift']}"
        )
    r = _run(10_000, dry_run=False)
    print(
        f"   write    {r['servers']:>6} servers: {r['seconds']:6.1f} s, {r['requests']:3d} API "
        f"requests, peak {r['peak_mib']:.1f} MiB (with moto's table), {r['written']} timers written"
    )
