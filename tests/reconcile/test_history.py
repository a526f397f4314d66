"""A listener stopped while the cloud changes, then a reconcile: the store is as if none was lost."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from reclaim.reconcile.engine import reconcile
from reclaim.store import open_store
from reclaim_sim import RecordingSink, SimServer
from tests.reconcile.conftest import MOVES, POLICY, deliver, mark_reconciled, pending


def _history(
    sim_server: SimServer, project_factory: Any, rng: random.Random, servers: int, steps: int
) -> None:
    """Boot servers in three projects and change them at random.

    Choices are made among servers in boot order, not by id: the ids are random UUIDs, so
    the same seed would otherwise tell a different story on every run."""
    cloud = sim_server.cloud
    projects = [project_factory() for _ in range(3)]
    owner: dict[str, Any] = {}
    for i in range(servers):
        p = projects[i % 3]
        owner[p.boot(f"vm-{i}")] = p
    for _ in range(steps):
        sid = rng.choice(list(owner))
        state = cloud.compute.servers[sid].vm_state
        action = rng.choice(MOVES[state])
        cloud.clock.advance(
            timedelta(seconds=rng.randint(1, 3 * 86400), microseconds=rng.randint(0, 999_999))
        )
        if action == "delete":
            cloud.compute.delete(owner.pop(sid).ctx, sid)
            if len(owner) < servers // 2:
                p = rng.choice(projects)
                owner[p.boot(f"vm-new-{len(owner)}")] = p
        else:
            owner[sid].act(sid, action)


def test_reconcile_after_lost_events_equals_uninterrupted_events(
    sim_server: SimServer, admin_conn: Any, recorder: RecordingSink, project_factory: Any
) -> None:
    """Over a generated history of 150 servers, the listener misses the middle third of the
    events; after a reconcile the pending timers are those of the uninterrupted stream, to
    within the second Nova reports ``updated`` in, and never earlier."""
    rng = random.Random(8)
    _history(sim_server, project_factory, rng, servers=150, steps=300)
    seen_before = len(recorder.all())
    cloud = sim_server.cloud
    # The middle of the story: the listener is down.
    ids = list(cloud.compute.servers)  # in boot order (see _history)
    for _ in range(300):
        sid = rng.choice(ids)
        server = cloud.compute.servers.get(sid)
        if server is None:
            continue
        moves = [a for a in MOVES[server.vm_state] if a != "delete"]
        action = "delete" if rng.random() < 0.1 else rng.choice(moves)
        cloud.clock.advance(
            timedelta(seconds=rng.randint(1, 86400), microseconds=rng.randint(0, 999_999))
        )
        ctx = _ctx(cloud, server)
        if action == "delete":
            cloud.compute.delete(ctx, sid)
        else:
            cloud.compute.action(ctx, sid, action)
    lost_until = len(recorder.all())
    # Back up: more changes, delivered.
    for _ in range(200):
        sid = rng.choice(ids)
        server = cloud.compute.servers.get(sid)
        if server is None:
            continue
        action = rng.choice([a for a in MOVES[server.vm_state] if a != "delete"])
        cloud.clock.advance(
            timedelta(seconds=rng.randint(1, 86400), microseconds=rng.randint(0, 999_999))
        )
        cloud.compute.action(_ctx(cloud, server), sid, action)
    everything = recorder.all()
    lost = everything[seen_before:lost_until]
    assert len(lost) > 500

    uninterrupted = mark_reconciled(open_store("memory://history-events"))
    deliver(uninterrupted, everything)
    lossy = mark_reconciled(open_store("memory://history-lossy"))
    deliver(lossy, everything[:seen_before] + everything[lost_until:])
    expected = pending(uninterrupted)
    before = pending(lossy)
    missing, stale = expected.keys() - before.keys(), before.keys() - expected.keys()
    assert missing and stale  # the lost events did lose and leave timers

    now = cloud.clock.now() + timedelta(minutes=5)
    report = reconcile(admin_conn, lossy, POLICY, now)

    got = pending(lossy)
    assert got.keys() == expected.keys()
    for key, (action, due, notices) in expected.items():
        g_action, g_due, g_notices = got[key]
        assert g_action == action
        assert timedelta(0) <= g_due - due < timedelta(seconds=1), key
        assert len(g_notices) == len(notices)
    assert report.count("create") == len(missing)
    assert report.count("cancel") == len(stale)
    assert report.servers == len(sim_server.cloud.compute.servers)

    # Reconciling the uninterrupted store finds nothing to change, and writes nothing.
    clean = reconcile(admin_conn, uninterrupted, POLICY, now)
    assert (clean.drift, clean.written) == (0, 0)
    assert clean.count("unchanged") == len(expected)
    # A second reconcile of the repaired store is a no-op too.
    again = reconcile(admin_conn, lossy, POLICY, now + timedelta(hours=1))
    assert (again.drift, again.written) == (0, 0)


def _ctx(cloud: Any, server: Any) -> Any:
    from reclaim_sim import Ctx

    return Ctx(user_id=server.user_id, project_id=server.project_id, roles=("member",))
