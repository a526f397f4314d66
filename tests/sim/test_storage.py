"""Cinder v3 and Swift through openstacksdk."""

from __future__ import annotations

from typing import Any

import pytest
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
