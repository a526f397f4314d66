"""OpenStack API requests per simulated day for a 10,000-server cloud: reclaim vs polling.

Model (steady state, seeded RNG): 10,000 servers in 50 projects; 1,000 stopped, their
stops spread over the last 14 days (shelve timers fall due over the next 14: about 71 in
the day); 1,800 shelved, spread over the last 180 days (about 10 deletions due); the rest
active. Notices due before the day were sent by earlier sweeps and delivered (the mail
ledger records them, as the mailer would; the day's notices are recorded as delivered when
published: the sweeper acts only on a delivered warning). During the day 2% of the servers
change state (200 owner actions at random times: 100 stops, 60 starts, 20
unshelves, 10 deletes of stopped and 10 of shelved servers), made in-process, so they are
not API requests; the cloud's notifications of them (and of reclaim's own actions) go
through the real parse, policy and store (dynalite, in memory). reclaim sweeps every 5
simulated minutes (288 sweeps) with ``OpenStackCloud`` over HTTP: its requests are one GET
per due action (the re-check) plus the action; notices do not reach OpenStack. Counted: every
request in the simulated cloud's log during the day (token requests included).

Baseline: a poller that lists every server every 15 minutes (96 listings a day),
``GET /servers/detail?all_tenants=1&limit=1000`` following Nova's next links (raw JSON, no
SDK objects), run against the same cloud at its 15-minute marks of the same day.
``SWEEP_BENCH_POLLS`` (default 12, evenly spaced) sets how many of the 96 are run; the
day's figure is then measured x 96 / polls (printed as such). Its actions would be the
same as reclaim's and are added to it. Also printed, computed only: a poller that GETs
each server (96 x 10,000). Target: reclaim needs a small fraction of the poller's requests.
"""

from __future__ import annotations

import random
import statistics
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.sweep_support import DynaliteServer, batch_write, deliver, env_int, timer_for
from reclaim.policy.servers import DELETE_SHELVED, SHELVE
from reclaim.routes import commands_for
from reclaim.settings import PolicySettings, SweepSettings
from reclaim.store import DynamoTimerStore
from reclaim.sweeper import OpenStackCloud, Sweeper
from reclaim_sim import Cloud, SimClock, SimServer
from tests.support.delivery import DeliveredNotices

START = datetime(2026, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)
STEP = timedelta(minutes=5)
POLL_EVERY = timedelta(minutes=15)
SERVERS = 10_000
STOPPED, SHELVED = 1_000, 1_800
EVENTS = {
    "os-stop": 100,
    "os-start": 60,
    "unshelve": 20,
    "delete-stopped": 10,
    "delete-shelved": 10,
}
PAGE = 1000


def _seed(cloud: Cloud, store: DynamoTimerStore, rng: random.Random) -> None:
    """Servers in their states, and the timers the policy keeps for them."""
    policy = PolicySettings()
    projects = [cloud.identity.create_project(f"bench-{i}") for i in range(50)]
    users = [cloud.identity.create_user(f"user-{i}", email=f"u{i}@example.org") for i in range(50)]
    images = [
        cloud.image.create_image(owner=p.id, name="img", visibility="private", status="active").id
        for p in projects
    ]
    items: list[dict[str, Any]] = []
    with cloud.quiet():
        for i in range(SERVERS):
            k = i % 50
            if i < STOPPED:
                state, since = "stopped", START - timedelta(days=14) * rng.random()
            elif i < STOPPED + SHELVED:
                state, since = "shelved_offloaded", START - timedelta(days=180) * rng.random()
            else:
                state, since = "active", START - timedelta(days=400) * rng.random()
            server = cloud.compute.create_server(
                project_id=projects[k].id,
                user_id=users[k].id,
                name=f"vm-{i}",
                image_id=images[k],
                state=state,
                created_at=since - timedelta(days=1),
                updated_at=since,
            )
            if state != "active":
                rule = SHELVE if state == "stopped" else DELETE_SHELVED
                timer = timer_for(
                    rule,
                    server.id,
                    since,
                    project_id=projects[k].id,
                    user_id=users[k].id,
                    sent_before=START,
                    policy=policy,
                )
                items.append(store.item_of("server", server.id, [timer], 1))
    batch_write(store.client, store.table, items)
    deliver(store, items)


def _day_events(rng: random.Random) -> list[tuple[datetime, str]]:
    events = [(START + DAY * rng.random(), kind) for kind, n in EVENTS.items() for _ in range(n)]
    return sorted(events)


def _owner_action(cloud: Cloud, kind: str, rng: random.Random) -> None:
    """One owner's state change on a server in a state that allows it."""
    wanted = {
        "os-stop": "active",
        "os-start": "stopped",
        "unshelve": "shelved_offloaded",
        "delete-stopped": "stopped",
        "delete-shelved": "shelved_offloaded",
    }[kind]
    with cloud.lock:
        candidates = [s for s in cloud.compute.servers.values() if s.vm_state == wanted]
    server = rng.choice(candidates)
    ctx = cloud.ctx(server.user_id, server.project_id)
    if kind.startswith("delete"):
        cloud.compute.delete(ctx, server.id)
    else:
        cloud.compute.action(ctx, server.id, kind)


def _poll(conn: Any) -> tuple[int, int]:
    """One full listing as a poller makes it: (servers seen, requests made)."""
    url: str | None = f"/servers/detail?all_tenants=1&limit={PAGE}"
    seen = requests = 0
    while url:
        body = conn.compute.get(url).json()
        requests += 1
        seen += len(body["servers"])
        nxt = [link["href"] for link in body.get("servers_links", []) if link["rel"] == "next"]
        url = nxt[0] if nxt else None
    return seen, requests


def _kind(method: str, path: str) -> str:
    if path.endswith("/auth/tokens"):
        return "token"
    if path.endswith("/action"):
        return "POST action"
    if "/servers/detail" in path or path.endswith("/servers"):
        return f"{method} listing"
    if "/servers/" in path:
        return f"{method} server"
    return f"{method} other"


def main() -> None:
    polls = min(max(env_int("SWEEP_BENCH_POLLS", 12), 1), 96)
    rng = random.Random(5)
    policy = PolicySettings()
    cloud = Cloud(clock=SimClock(START))
    recorder = cloud.record_notifications(maxlen=None)
    began = time.perf_counter()
    with DynaliteServer(in_memory=True) as db, SimServer(cloud) as sim:
        store = db.store("bench-day")
        _seed(cloud, store, rng)
        seeded = time.perf_counter() - began
        conn = sim.connect()
        conn.compute.get("/servers", params={"limit": 1})  # authenticate before counting
        sweeper = Sweeper(
            store,
            OpenStackCloud(conn),
            DeliveredNotices(store, cloud.clock.now),
            policy,
            "bench",
            SweepSettings(),
        )
        events = _day_events(rng)
        poll_slots = {round(i * 96 / polls) for i in range(polls)}
        reclaim_requests: Counter[str] = Counter()
        poll_requests: list[int] = []
        poll_times: list[float] = []
        outcomes: Counter[str] = Counter()
        sweep_time = 0.0
        drained = 0
        cloud.requests.clear()
        day_began = time.perf_counter()
        for step in range(1, 289):
            now = START + STEP * step
            while events and events[0][0] <= now:
                at, kind = events.pop(0)
                cloud.clock.set(at)
                _owner_action(cloud, kind, rng)
            cloud.clock.set(now)
            notes = recorder.all()[drained:]
            drained += len(notes)
            commands = [c for n in notes for c in commands_for(n.wire(), policy)]
            if commands:
                store.apply(commands)
            started = time.perf_counter()
            report = sweeper.sweep(now)
            sweep_time += time.perf_counter() - started
            outcomes.update(o.result for o in report.outcomes)
            for r in cloud.requests.all():
                reclaim_requests[_kind(r.method, r.path)] += 1
            cloud.requests.clear()
            slot = (
                (now - START) // POLL_EVERY - 1
                if (now - START) % POLL_EVERY == timedelta(0)
                else -1
            )
            if slot in poll_slots:
                started = time.perf_counter()
                seen, made = _poll(conn)
                poll_times.append(time.perf_counter() - started)
                poll_requests.append(made)
                assert len(cloud.requests) == made and seen > 0
                cloud.requests.clear()
        day = time.perf_counter() - day_began
    cloud.close()
    total = sum(reclaim_requests.values())
    actions = reclaim_requests["POST action"] + reclaim_requests["DELETE server"]
    measured = sum(poll_requests)
    per_day = measured * 96 / len(poll_requests)
    baseline = per_day + actions
    print(
        f"   seeded {SERVERS:,} servers and {STOPPED + SHELVED:,} timers in {seeded:.1f} s; "
        f"simulated day (288 sweeps, {sum(EVENTS.values())} owner changes, "
        f"{len(poll_requests)} polls) in {day:.1f} s, sweeps {sweep_time:.1f} s"
    )
    print(f"   sweep outcomes over the day: {dict(sorted(outcomes.items()))}")
    print(
        f"   reclaim: {total:,} requests/day ({', '.join(f'{k} {v}' for k, v in sorted(reclaim_requests.items()))})"
    )
    print(
        f"   polling every 15 min: measured {len(poll_requests)} of 96 listings, "
        f"{measured:,} requests ({'/'.join(str(x) for x in sorted(set(poll_requests)))} per listing), "
        f"median {statistics.median(poll_times):.2f} s per listing"
    )
    print(
        f"   baseline: {per_day:,.0f} listing requests/day"
        + (f" (measured x 96/{len(poll_requests)})" if len(poll_requests) < 96 else "")
        + f" + {actions} actions = {baseline:,.0f} requests/day; "
        f"per-server GET poller (computed): {96 * SERVERS + actions:,}"
    )
    print(
        f"   ratio reclaim / listing poller {total / baseline:.3f}; "
        f"reclaim / per-server poller {total / (96 * SERVERS + actions):.5f}"
    )
