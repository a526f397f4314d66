"""Nova v2.1 through openstacksdk: servers, filters, actions, state machine, locks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import requests
from openstack import exceptions

from reclaim_sim import Cloud, RecordingSink, SimServer
from tests.sim.conftest import Tenant


def test_version_document_advertises_microversions(sim_server: SimServer) -> None:
    doc = requests.get(f"{sim_server.url}/compute/v2.1", timeout=5).json()["version"]
    assert doc["min_version"] == "2.1"
    assert tuple(int(x) for x in doc["version"].split(".")) >= (2, 96)


def test_microversion_is_negotiated_and_echoed(
    admin_conn: Any, tenant: Tenant, sim_server: SimServer
) -> None:
    sid = tenant.boot("mv")
    reply = admin_conn.compute.get(f"/servers/{sid}", microversion="2.79")
    assert reply.headers["OpenStack-API-Version"] == "compute 2.79"
    assert reply.json()["server"]["locked"] is False
    token = admin_conn.session.get_token()
    too_new = requests.get(
        f"{sim_server.url}/compute/v2.1/servers/{sid}",
        timeout=5,
        headers={"X-Auth-Token": token, "OpenStack-API-Version": "compute 2.999"},
    )
    assert too_new.status_code == 406


def test_create_get_delete_server(tenant: Tenant) -> None:
    image = tenant.image("cirros")
    conn = tenant.conn
    server = conn.compute.create_server(name="web", image_id=image, flavor_id="2", networks="none")
    got = conn.compute.get_server(server.id)
    assert got.status == "ACTIVE" and got.vm_state == "active"
    assert got.image.id == image and got.project_id == tenant.project_id
    assert got.user_id == tenant.user_id and got.power_state == 1 and got.task_state is None
    assert got.is_locked is False and got.metadata == {} and got.updated_at
    conn.compute.delete_server(server)
    with pytest.raises(exceptions.NotFoundException):
        conn.compute.get_server(server.id)


def test_list_filters_all_projects_project_and_image(admin_conn: Any, tenant_factory: Any) -> None:
    a, b = tenant_factory(), tenant_factory()
    shared = a.image("shared-base", visibility="public")
    a1, a2 = a.boot("a1", shared), a.boot("a2")
    b1 = b.boot("b1", shared)
    by_image = {s.id for s in admin_conn.compute.servers(all_projects=True, image=shared)}
    assert by_image == {a1, b1}
    in_a = {s.id for s in admin_conn.compute.servers(all_projects=True, project_id=a.project_id)}
    assert in_a == {a1, a2}
    # without all_projects Nova lists the caller's own project only, even for an admin
    assert not {a1, a2, b1} & {s.id for s in admin_conn.compute.servers()}
    assert {s.id for s in a.conn.compute.servers()} == {a1, a2}
    with pytest.raises(exceptions.ForbiddenException):
        list(a.conn.compute.servers(all_projects=True))
    # a member cannot see another project's server
    with pytest.raises(exceptions.NotFoundException):
        a.conn.compute.get_server(b1)


def test_pagination_with_limit_and_marker(admin_conn: Any, tenant: Tenant) -> None:
    image = tenant.image()
    ids = {tenant.boot(f"p{i}", image) for i in range(7)}
    pages = admin_conn.compute.get(
        "/servers/detail", params={"all_tenants": 1, "project_id": tenant.project_id, "limit": 3}
    )
    body = pages.json()
    assert len(body["servers"]) == 3 and body["servers_links"][0]["rel"] == "next"
    listed = list(
        admin_conn.compute.servers(all_projects=True, project_id=tenant.project_id, limit=3)
    )
    assert {s.id for s in listed} == ids and len(listed) == 7


STATUS_AFTER = [
    ("stop_server", "SHUTOFF", "stopped", 4),
    ("start_server", "ACTIVE", "active", 1),
    ("suspend_server", "SUSPENDED", "suspended", 7),
    ("resume_server", "ACTIVE", "active", 1),
    ("pause_server", "PAUSED", "paused", 3),
    ("unpause_server", "ACTIVE", "active", 1),
    ("shelve_server", "SHELVED_OFFLOADED", "shelved_offloaded", 4),
    ("unshelve_server", "ACTIVE", "active", 1),
]


def test_actions_walk_the_state_machine(tenant: Tenant, sim_cloud: Cloud) -> None:
    conn = tenant.conn
    sid = tenant.boot("walker")
    last = conn.compute.get_server(sid).updated_at
    for method, status, vm_state, power in STATUS_AFTER:
        sim_cloud.clock.advance(60)
        getattr(conn.compute, method)(sid)
        got = conn.compute.get_server(sid)
        assert (got.status, got.vm_state, got.power_state) == (status, vm_state, power), method
        assert got.updated_at > last, method
        last = got.updated_at


def test_action_from_wrong_state_is_409(tenant: Tenant) -> None:
    sid = tenant.boot("wrong", state="stopped")
    with pytest.raises(exceptions.ConflictException, match="vm_state stopped"):
        tenant.conn.compute.suspend_server(sid)
    with pytest.raises(exceptions.ConflictException):
        tenant.conn.compute.unshelve_server(sid)


def test_shelve_then_offload_without_offload_time(
    admin_conn: Any, tenant: Tenant, sim_cloud: Cloud, recorder: RecordingSink
) -> None:
    sid = tenant.boot("shelver", state="stopped")
    recorder.clear()
    admin_conn.compute.shelve_server(sid)
    assert admin_conn.compute.get_server(sid).status == "SHELVED_OFFLOADED"
    ends = [n.event_type for n in recorder.all() if n.event_type.endswith(".end")]
    assert ends == [
        "instance.shelve.end",
        "compute.instance.shelve.end",
        "instance.shelve_offload.end",
        "compute.instance.shelve_offload.end",
    ]
    # Nova keeps a snapshot while shelved and removes it on delete
    snapshot = sim_cloud.compute.servers[sid].shelved_image_id
    assert snapshot and sim_cloud.image.images[snapshot].properties["image_type"] == "snapshot"
    admin_conn.compute.delete_server(sid)
    assert snapshot not in sim_cloud.image.images


def test_shelved_offload_time_delays_offload(tenant: Tenant, sim_cloud: Cloud) -> None:
    sim_cloud.config.shelved_offload_time = 3600
    try:
        sid = tenant.boot("slow-shelve")
        tenant.conn.compute.shelve_server(sid)
        assert tenant.conn.compute.get_server(sid).status == "SHELVED"
        sim_cloud.clock.advance(timedelta(hours=2))
        assert tenant.conn.compute.get_server(sid).status == "SHELVED_OFFLOADED"
    finally:
        sim_cloud.config.shelved_offload_time = 0


def test_locked_server_refuses_non_admin(admin_conn: Any, tenant: Tenant) -> None:
    sid = tenant.boot("locked")
    admin_conn.compute.lock_server(sid, locked_reason="under investigation")
    assert tenant.conn.compute.get_server(sid).is_locked
    with pytest.raises(exceptions.ConflictException, match="is locked"):
        tenant.conn.compute.stop_server(sid)
    with pytest.raises(exceptions.ConflictException):
        tenant.conn.compute.delete_server(sid)
    with pytest.raises(exceptions.ForbiddenException):
        tenant.conn.compute.unlock_server(sid)
    admin_conn.compute.stop_server(sid)  # the admin may act on a locked server
    admin_conn.compute.unlock_server(sid)
    tenant.conn.compute.start_server(sid)
    assert tenant.conn.compute.get_server(sid).status == "ACTIVE"


def test_metadata(tenant: Tenant, sim_cloud: Cloud) -> None:
    conn = tenant.conn
    sid = tenant.boot("meta", metadata={"a": "1"})
    before = conn.compute.get_server(sid).updated_at
    sim_cloud.clock.advance(5)
    conn.compute.set_server_metadata(sid, reclaim_exempt="true")
    got = conn.compute.get_server(sid)
    assert got.metadata == {"a": "1", "reclaim_exempt": "true"}
    assert got.updated_at > before
    conn.compute.delete_server_metadata(sid, ["a"])
    assert conn.compute.get_server_metadata(sid).metadata == {"reclaim_exempt": "true"}


def test_server_booted_from_volume_has_no_image(
    admin_conn: Any, tenant: Tenant, sim_cloud: Cloud
) -> None:
    vol = sim_cloud.volume.create_volume(
        project_id=tenant.project_id, user_id=tenant.user_id, name="boot", bootable=True
    )
    server = sim_cloud.compute.create_server(
        project_id=tenant.project_id, user_id=tenant.user_id, name="bfv", volume_ids=[vol.id]
    )
    got = admin_conn.compute.get_server(server.id)
    assert not got.image  # Nova sends "" and openstacksdk turns it into {}
    assert [a["id"] for a in got.attached_volumes] == [vol.id]
