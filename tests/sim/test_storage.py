"""Cinder v3 and Swift through openstacksdk."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from keystoneauth1 import exceptions as ksa
from openstack import exceptions

from reclaim_sim import Cloud
from tests.sim.conftest import Tenant


def test_volume_snapshot_backup_round_trip(tenant: Tenant) -> None:
    bs = tenant.conn.block_storage
    vol = bs.create_volume(name="data", size=2)
    assert bs.get_volume(vol.id).status == "available"
    snap = bs.create_snapshot(volume_id=vol.id, name="snap")
    with pytest.raises(exceptions.BadRequestException):
        bs.delete_volume(vol)  # has snapshots
    full = bs.create_backup(volume_id=vol.id, name="full")
    incr = bs.create_backup(volume_id=vol.id, name="incr", is_incremental=True)
    assert bs.get_backup(full.id).has_dependent_backups is True
    with pytest.raises(exceptions.BadRequestException):
        bs.delete_backup(full)
    bs.delete_backup(incr)
    bs.delete_backup(full)
    bs.delete_snapshot(snap)
    bs.delete_volume(vol)
    with pytest.raises(exceptions.NotFoundException):
        bs.get_volume(vol.id)


def test_attached_volume_cannot_be_deleted(tenant: Tenant, sim_cloud: Cloud) -> None:
    bs = tenant.conn.block_storage
    vol = bs.create_volume(name="attached", size=1)
    sid = tenant.boot("holder")
    tenant.conn.compute.create_volume_attachment(sid, volume_id=vol.id)
    got = bs.get_volume(vol.id)
    assert got.status == "in-use" and got.attachments[0]["server_id"] == sid
    with pytest.raises(exceptions.BadRequestException):
        bs.delete_volume(vol)
    tenant.conn.compute.delete_server(sid)
    assert bs.get_volume(vol.id).status == "available"
    bs.delete_volume(vol)


def test_volume_project_filters(admin_conn: Any, tenant_factory: Any) -> None:
    a, b = tenant_factory(), tenant_factory()
    va = a.conn.block_storage.create_volume(name="a", size=1)
    b.conn.block_storage.create_volume(name="b", size=1)
    assert [v.id for v in a.conn.block_storage.volumes()] == [va.id]
    in_a = admin_conn.block_storage.volumes(all_projects=True, project_id=a.project_id)
    assert [v.id for v in in_a] == [va.id]


def test_swift_account_per_project(tenant_factory: Any) -> None:
    a, b = tenant_factory(), tenant_factory()
    store = a.conn.object_store
    store.create_container("results")
    store.upload_object("results", "run.txt", data=b"hello")
    assert [c.name for c in store.containers()] == ["results"]
    assert [o.name for o in store.objects("results")] == ["run.txt"]
    assert store.download_object("run.txt", container="results") == b"hello"
    assert list(b.conn.object_store.containers()) == []  # b's own account is empty
    with pytest.raises(exceptions.ConflictException):
        store.delete_container("results")
    store.delete_object("run.txt", container="results")
    store.delete_container("results")
    assert list(store.containers()) == []


def test_swift_head_object_reports_length(tenant: Tenant) -> None:
    store = tenant.conn.object_store
    store.create_container("heads")
    store.upload_object("heads", "five.bin", data=b"12345")
    head = store.get_object_metadata("five.bin", container="heads")
    assert int(head.content_length) == 5 and head.etag


def test_volume_microversions_are_gated(tenant: Tenant) -> None:
    bs = tenant.conn.block_storage
    assert bs.get_endpoint_data().max_microversion == (3, 71)
    answer = bs.get("/volumes")
    assert answer.headers["OpenStack-API-Version"] == "volume 3.0"
    assert bs.get("/volumes", microversion="3.71").headers["OpenStack-API-Version"] == (
        "volume 3.71"
    )
    with pytest.raises(ksa.http.NotAcceptable) as refused:
        bs.get("/volumes", microversion="3.72", raise_exc=True)
    assert refused.value.response.json() == {
        "computeFault": {
            "code": 406,
            "message": "Version 3.72 is not supported by the API. Minimum is 3.0 and "
            "maximum is 3.71.",
        }
    }
    with pytest.raises(ksa.http.NotAcceptable):
        bs.get("/volumes", microversion="2.5", raise_exc=True)
    with pytest.raises(ksa.http.BadRequest) as malformed:
        bs.get("/volumes", headers={"OpenStack-API-Version": "volume 3.x"}, raise_exc=True)
    assert "is of invalid format" in malformed.value.response.json()["badRequest"]["message"]
    latest = bs.get("/volumes", headers={"OpenStack-API-Version": "volume latest"})
    assert latest.headers["OpenStack-API-Version"] == "volume 3.71"


def test_volume_fields_follow_the_microversion_and_the_role(
    tenant: Tenant, admin_conn: Any
) -> None:
    vid = tenant.conn.block_storage.create_volume(name="fields", size=1).id

    def keys(conn: Any, mv: str) -> set[str]:
        body = conn.block_storage.get(f"/volumes/{vid}", microversion=mv).json()
        return set(body["volume"])

    admin_only = {"os-vol-host-attr:host", "migration_status", "os-vol-mig-status-attr:migstat"}
    assert admin_only <= keys(admin_conn, "3.0")
    assert not admin_only & keys(tenant.conn, "3.0")
    assert "os-vol-tenant-attr:tenant_id" in keys(tenant.conn, "3.0")
    assert "group_id" not in keys(tenant.conn, "3.0")
    assert {"group_id", "consumes_quota", "volume_type_id"} <= keys(tenant.conn, "3.71")
    assert "cluster_name" not in keys(tenant.conn, "3.71")
    assert "cluster_name" in keys(admin_conn, "3.71")
    # as openstacksdk reads them
    assert tenant.conn.block_storage.get_volume(vid).host is None
    assert admin_conn.block_storage.get_volume(vid).host
    assert tenant.conn.block_storage.get_volume(vid).project_id == tenant.project_id


def test_volume_rename_extend_and_metadata(tenant: Tenant) -> None:
    bs = tenant.conn.block_storage
    vol = bs.create_volume(name="grow", size=1)
    bs.update_volume(vol, name="grown", description="bigger")
    assert (bs.get_volume(vol).name, bs.get_volume(vol).description) == ("grown", "bigger")
    bs.extend_volume(vol, 3)
    assert bs.get_volume(vol).size == 3
    with pytest.raises(exceptions.BadRequestException, match="must be greater"):
        bs.extend_volume(vol, 3)
    bs.set_volume_metadata(vol, owner="lab", keep="yes")
    assert bs.get_volume_metadata(vol).metadata == {"owner": "lab", "keep": "yes"}
    bs.delete_volume_metadata(vol, keys=["keep"])
    assert bs.get_volume(vol).metadata == {"owner": "lab"}
    with pytest.raises(exceptions.NotFoundException):
        bs.delete_volume_metadata(vol, keys=["keep"])
    with pytest.raises(ksa.http.BadRequest) as unknown:
        bs.post(f"/volumes/{vol.id}/action", json={"os-frobnicate": {}}, raise_exc=True)
    assert "no such action: os-frobnicate" in unknown.value.response.json()["badRequest"]["message"]


@pytest.fixture
def slow_volumes(sim_cloud: Cloud) -> Iterator[Cloud]:
    """Volumes take 0.5 s (wall clock) to create, extend and delete (Nova's steps take
    their SimConfig.task_seconds, 0)."""
    sim_cloud.volume.transition_seconds = 0.5
    yield sim_cloud
    sim_cloud.volume.transition_seconds = None


def test_volume_changes_take_time_as_clients_expect(tenant: Tenant, slow_volumes: Cloud) -> None:
    bs = tenant.conn.block_storage
    vol = bs.create_volume(name="slow", size=1)
    assert vol.status == "creating"
    assert bs.get_volume(vol).status == "creating"
    with pytest.raises(exceptions.BadRequestException):
        bs.extend_volume(vol, 2)  # not available yet
    bs.wait_for_status(vol, "available", wait=30, interval=0.1)
    bs.extend_volume(vol, 2)
    assert bs.get_volume(vol).status == "extending"
    assert bs.wait_for_status(vol, "available", wait=30, interval=0.1).size == 2
    bs.delete_volume(vol)
    assert bs.get_volume(vol).status == "deleting"
    with pytest.raises(exceptions.BadRequestException):
        bs.delete_volume(vol)  # already going
    bs.wait_for_delete(vol, wait=30, interval=0.1)
    with pytest.raises(exceptions.NotFoundException):
        bs.get_volume(vol.id)
