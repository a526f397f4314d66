"""Nova's asynchronous server tasks (``SimConfig.task_seconds``): what openstacksdk sees while
a boot, stop, shelve or delete runs, and deleted servers listed as Nova lists them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from openstack import exceptions

from reclaim.settings import PolicySettings, SweepSettings
from reclaim.sweeper import OpenStackCloud, RecordingNotices, actions
from reclaim.timers import Timer
from reclaim_sim import Cloud, RecordingSink
from tests.sim.conftest import Tenant
from tests.support.waiting import wait_for

#: Long enough to look at each step from the client under load, short enough for a test.
STEP = 1.5


@pytest.fixture
def slow_tasks(sim_cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> Iterator[float]:
    monkeypatch.setattr(sim_cloud.config, "task_seconds", STEP)
    yield STEP
    wait_for(lambda: not sim_cloud.compute.busy(), timeout=60)


def _seen(conn: Any, sid: str) -> tuple[str, str | None]:
    server = conn.compute.get_server(sid)
    return server.status, server.task_state


def _steps(conn: Any, sid: str, until: str, timeout: float = 60) -> list[tuple[str, str | None]]:
    """Each distinct (status, task_state) the client sees until ``until`` with no task."""
    seen: list[tuple[str, str | None]] = []

    def done() -> bool:
        now = _seen(conn, sid)
        if not seen or seen[-1] != now:
            seen.append(now)
        return now == (until, None)

    wait_for(done, timeout=timeout, every=0.05)
    return seen


def test_boot_shows_build_until_the_task_ends(tenant: Tenant, slow_tasks: float) -> None:
    image = tenant.image("boot-image")
    server = tenant.conn.compute.create_server(name="slow", image_id=image, flavor_id="1")
    first = tenant.conn.compute.get_server(server.id)
    assert (first.status, first.task_state, first.vm_state) == ("BUILD", "scheduling", "building")
    done = tenant.conn.compute.wait_for_server(first, status="ACTIVE", interval=0.1, wait=60)
    assert (done.task_state, done.vm_state, done.power_state) == (None, "active", 1)
    assert done.launched_at


def test_stop_runs_powering_off_then_shows_shutoff(
    tenant: Tenant, slow_tasks: float, recorder: RecordingSink
) -> None:
    sid = tenant.boot("stopper")
    recorder.clear()
    tenant.conn.compute.stop_server(sid)
    assert _seen(tenant.conn, sid) == ("ACTIVE", "powering-off")
    assert [n.event_type for n in recorder.all() if n.event_type.endswith(".end")] == []
    with pytest.raises(exceptions.ConflictException, match="task_state powering-off"):
        tenant.conn.compute.start_server(sid)
    assert _steps(tenant.conn, sid, "SHUTOFF")[-1] == ("SHUTOFF", None)
    assert "instance.power_off.end" in [n.event_type for n in recorder.all()]


def test_shelve_goes_through_shelving_and_offloading(
    tenant: Tenant, slow_tasks: float, sim_cloud: Cloud
) -> None:
    sid = tenant.boot("shelver", state="stopped")
    tenant.conn.compute.shelve_server(sid)
    seen = _steps(tenant.conn, sid, "SHELVED_OFFLOADED")
    assert seen[0] == ("SHUTOFF", "shelving")
    assert ("SHELVED", "shelving_offloading") in seen
    assert seen[-1] == ("SHELVED_OFFLOADED", None)
    assert [s for s in seen if s[1] is None] == [("SHELVED_OFFLOADED", None)], "never idle midway"
    assert sim_cloud.compute.servers[sid].host is None


def test_delete_shows_deleting_then_the_server_is_gone_but_listed_as_deleted(
    admin_conn: Any, tenant: Tenant, slow_tasks: float, sim_cloud: Cloud
) -> None:
    since = sim_cloud.clock.now() - timedelta(seconds=1)
    sid = tenant.boot("doomed")
    sim_cloud.clock.advance(60)
    tenant.conn.compute.delete_server(sid)
    assert _seen(tenant.conn, sid) == ("ACTIVE", "deleting")
    tenant.conn.compute.delete_server(sid)  # again while deleting: accepted, nothing new
    tenant.conn.compute.wait_for_delete(tenant.conn.compute.get_server(sid), interval=0.1, wait=60)
    with pytest.raises(exceptions.NotFoundException):
        admin_conn.compute.get_server(sid)

    assert sid not in [s.id for s in tenant.conn.compute.servers()]
    (deleted,) = [
        s for s in admin_conn.compute.servers(all_projects=True, deleted_only=True) if s.id == sid
    ]
    assert (deleted.status, deleted.vm_state, deleted.task_state) == ("DELETED", "deleted", None)
    assert deleted.terminated_at
    changed = {s.id: s.status for s in tenant.conn.compute.servers(changes_since=since.isoformat())}
    assert changed[sid] == "DELETED"
    # deleted=true is an admin's filter: a member's is ignored, as Nova's policy drops it
    assert sid not in [s.id for s in tenant.conn.compute.servers(deleted_only=True)]


def test_without_task_seconds_every_task_is_done_when_the_api_answers(tenant: Tenant) -> None:
    image = tenant.image("quick-image")
    server = tenant.conn.compute.create_server(name="quick", image_id=image, flavor_id="1")
    assert _seen(tenant.conn, server.id) == ("ACTIVE", None)
    tenant.conn.compute.stop_server(server.id)
    assert _seen(tenant.conn, server.id) == ("SHUTOFF", None)


def test_the_sweeper_follows_a_slow_shelve_to_offloaded(
    admin_conn: Any, tenant: Tenant, slow_tasks: float
) -> None:
    sid = tenant.boot("swept", state="stopped")
    now = datetime.now(UTC)
    ctx = actions.Context(
        cloud=OpenStackCloud(admin_conn),
        notices=RecordingNotices(),
        policy=PolicySettings(),
        settings=SweepSettings(shelve_wait="2m"),  # type: ignore[arg-type]
        now=now,
        reserve=lambda _t: True,
        sleep=time.sleep,
        clock=time.monotonic,
    )
    timer = Timer(
        resource_type="server",
        resource_id=sid,
        rule="shelve_stopped",
        action="shelve",
        project_id=tenant.project_id,
        due_at=now - timedelta(hours=1),
    )
    done = actions.perform(ctx, timer, None)
    assert done.detail == {"status": "SHELVED_OFFLOADED"}, "recorded once Nova shows it"
    assert _seen(tenant.conn, sid) == ("SHELVED_OFFLOADED", None)
