"""Actions per second against the simulated cloud: a sweep of N due shelve timers vs N raw
shelve calls.

reclaim: a real ``Sweeper`` on ``OpenStackCloud(conn)`` (openstacksdk over HTTP), the store
on a dynalite server (in memory, 127.0.0.1), parallelism from ``SweepSettings`` (default 8).
Each timer costs a claim, the mail ledger read of its delivered notice (the sweeper acts
only on a delivered warning; the benchmark records the deliveries as the mailer would), a
re-check (GET server), the shelve (POST action), its confirmation (GET server: Nova shows
it shelved) and the completion. The caps are raised to N for the benchmark (the defaults, 100 per sweep and 25
per project, would stop the sweep). Baseline, in the same run: N
``conn.compute.shelve_server`` calls in a sequential loop, no re-check, no store. Each
sample uses fresh stopped servers; samples alternate. The simulated cloud runs in a child
process (as a real cloud runs elsewhere), so its request handling does not share this
process's interpreter lock; it counts the shelves it served, which must equal the calls.

``SWEEP_BENCH_ACTIONS`` (default 300) sets N, ``SWEEP_BENCH_REPEATS`` (default 3) the
samples of each. Target: reclaim's rate is the figure to watch; a ratio near or above 1
means the re-check and the store cost less than the parallelism wins.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
from datetime import timedelta
from multiprocessing.connection import Connection
from typing import Any

from benchmarks.sweep_support import (
    NOW,
    DynaliteServer,
    batch_write,
    deliver,
    env_int,
    fake_id,
    timer_for,
)
from reclaim.policy.servers import SHELVE
from reclaim.settings import PolicySettings, SweepSettings
from reclaim.store import DynamoTimerStore
from reclaim.sweeper import OpenStackCloud, RecordingNotices, Sweeper

STOPPED_AT = NOW - timedelta(days=100)


def _serve(pipe: Connection, servers: int) -> None:
    """Child process: a simulated cloud with ``servers`` stopped servers, served until told."""
    from reclaim_sim import Cloud, SimClock, SimServer

    cloud = Cloud(clock=SimClock(NOW))
    project = cloud.identity.create_project("bench")
    user = cloud.identity.create_user("bench-user", email="u@example.org")
    cloud.identity.grant(user.id, project.id, "member")
    image = cloud.image.create_image(
        owner=project.id, name="img", visibility="private", status="active"
    )
    for i in range(servers):
        cloud.compute.create_server(
            id=fake_id(i, 3),
            project_id=project.id,
            user_id=user.id,
            name=f"vm-{i}",
            image_id=image.id,
            state="stopped",
            updated_at=STOPPED_AT,
        )
    with SimServer(cloud) as server:
        pipe.send((server.port, project.id, user.id, cloud.config.region))
        pipe.recv()  # stop
        shelves = sum(
            1
            for r in cloud.requests.filter(method="POST", path_regex=r"/action$")
            if r.status == 202
        )
        pipe.send((shelves, len(cloud.requests)))
    cloud.close()


def _connect(port: int, region: str) -> Any:
    import openstack.connection

    return openstack.connection.Connection(
        auth_type="password",
        auth={
            "auth_url": f"http://127.0.0.1:{port}/identity/v3",
            "username": "admin",
            "password": "admin",
            "project_name": "admin",
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
        region_name=region,
        interface="public",
        identity_api_version="3",
    )


def _sweep(store: DynamoTimerStore, conn: Any, settings: SweepSettings, n: int) -> float:
    """One timed sweep of the ``n`` due timers in ``store``; all must be done."""
    sweeper = Sweeper(
        store, OpenStackCloud(conn), RecordingNotices(), PolicySettings(), "bench", settings
    )
    start = time.perf_counter()
    report = sweeper.sweep(NOW)
    elapsed = time.perf_counter() - start
    assert report.counts()["done"] == n, report.counts()
    return elapsed


def _loop(conn: Any, server_ids: list[str]) -> float:
    """The baseline: one shelve call per server, sequentially, timed."""
    start = time.perf_counter()
    for sid in server_ids:
        conn.compute.shelve_server(sid)
    return time.perf_counter() - start


def main() -> None:
    n = env_int("SWEEP_BENCH_ACTIONS", 300)
    repeats = env_int("SWEEP_BENCH_REPEATS", 3)
    settings = SweepSettings(max_actions=n, max_actions_per_project=n)
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(child, 2 * n * repeats), daemon=True)
    proc.start()
    try:
        port, project_id, user_id, region = parent.recv()
        conn = _connect(port, region)
        conn.compute.get("/servers", params={"limit": 1})  # authenticate before measuring
        ids = [fake_id(i, 3) for i in range(2 * n * repeats)]
        sweeps: list[float] = []
        loops: list[float] = []
        with DynaliteServer(in_memory=True) as db:
            for r in range(repeats):
                mine = ids[2 * n * r : 2 * n * r + n]
                raw = ids[2 * n * r + n : 2 * n * (r + 1)]
                store = db.store(f"bench-actions-{r}")
                items = [
                    store.item_of(
                        "server",
                        sid,
                        [
                            timer_for(
                                SHELVE,
                                sid,
                                STOPPED_AT,
                                project_id=project_id,
                                user_id=user_id,
                                sent_before=NOW,
                            )
                        ],
                        1,
                    )
                    for sid in mine
                ]
                batch_write(store.client, store.table, items)
                deliver(store, items)

                if r % 2 == 0:
                    sweeps.append(_sweep(store, conn, settings, n))
                    loops.append(_loop(conn, raw))
                else:
                    loops.append(_loop(conn, raw))
                    sweeps.append(_sweep(store, conn, settings, n))
        parent.send("stop")
        shelves, requests = parent.recv()
    finally:
        proc.join(timeout=15)
        if proc.is_alive():
            proc.kill()
            proc.join()
    assert shelves == 2 * n * repeats, (shelves, 2 * n * repeats)
    rate = n / statistics.median(sweeps)
    base = n / statistics.median(loops)
    print(
        f"   reclaim sweep, {n} due shelve timers, parallelism {settings.parallelism}: "
        f"median {statistics.median(sweeps):.2f} s = {rate:,.0f} actions/s "
        f"(samples {', '.join(f'{n / x:.0f}' for x in sweeps)})"
    )
    print(
        f"   baseline, {n} sequential conn.compute.shelve_server calls: "
        f"median {statistics.median(loops):.2f} s = {base:,.0f} actions/s "
        f"(samples {', '.join(f'{n / x:.0f}' for x in loops)})"
    )
    print(
        f"   the cloud served {shelves} shelves, {requests} requests in all "
        f"(sweep: GET + POST + GET per timer)"
    )
    print(f"   ratio reclaim / baseline {rate / base:.2f}")
