"""Glance v2 through openstacksdk: visibility, hiding, protection, members, pagination."""

from __future__ import annotations

from typing import Any

import pytest
from openstack import exceptions

from reclaim_sim import Cloud, RecordingSink
from tests.sim.conftest import Tenant


def test_get_image_has_owner_visibility_and_properties(tenant: Tenant) -> None:
    iid = tenant.image("mine", visibility="community", properties={"eol": "true"})
    image = tenant.conn.image.get_image(iid)
    assert image.owner == tenant.project_id
    assert image.visibility == "community"
    assert image.is_protected is False and image.is_hidden is False
    assert image.properties["eol"] == "true"


def test_default_list_hides_other_projects_community_and_hidden_images(
    tenant_factory: Any,
) -> None:
    owner, other = tenant_factory(), tenant_factory()
    community = owner.image("comm", visibility="community")
    hidden = owner.image("hidden", visibility="public", os_hidden=True)
    private = owner.image("private")
    seen_by_other = {i.id for i in other.conn.image.images()}
    assert not {community, hidden, private} & seen_by_other
    assert community in {i.id for i in other.conn.image.images(visibility="community")}
    assert hidden in {i.id for i in other.conn.image.images(is_hidden=True)}
    # the owner's own community images are in its default list (as in Glance)
    assert {community, private} <= {i.id for i in owner.conn.image.images()}
    assert other.conn.image.get_image(community).id == community
    with pytest.raises(exceptions.NotFoundException):
        other.conn.image.get_image(private)


def test_owner_filter_and_pagination(admin_conn: Any, tenant: Tenant) -> None:
    ids = {tenant.image(f"page-{i}") for i in range(5)}
    listed = list(admin_conn.image.images(owner=tenant.project_id, limit=2))
    assert {i.id for i in listed} == ids and len(listed) == 5


def test_protected_image_cannot_be_deleted(tenant: Tenant, recorder: RecordingSink) -> None:
    iid = tenant.image("keep", protected=True)
    with pytest.raises(exceptions.ForbiddenException):
        tenant.conn.image.delete_image(iid)
    tenant.conn.image.update_image(iid, is_protected=False)
    tenant.conn.image.delete_image(iid)
    with pytest.raises(exceptions.NotFoundException):
        tenant.conn.image.get_image(iid)
    kinds = [n.event_type for n in recorder.all()]
    assert kinds == ["image.create", "image.update", "image.delete"]
    deleted = recorder.all()[-1]
    assert deleted.exchange == "glance" and deleted.publisher_id == "image.localhost"
    assert deleted.payload["deleted"] is True and deleted.payload["id"] == iid


def test_members(tenant_factory: Any, recorder: RecordingSink) -> None:
    owner, friend = tenant_factory(), tenant_factory()
    iid = owner.image("shared", visibility="shared")
    owner.conn.image.add_member(iid, member_id=friend.project_id)
    assert iid not in {i.id for i in friend.conn.image.images()}  # pending: not listed
    friend.conn.image.update_member(friend.project_id, iid, status="accepted")
    assert iid in {i.id for i in friend.conn.image.images()}
    members = list(owner.conn.image.members(iid))
    assert [(m.member_id, m.status) for m in members] == [(friend.project_id, "accepted")]
    owner.conn.image.remove_member(friend.project_id, iid)
    assert list(owner.conn.image.members(iid)) == []
    events = [
        (n.event_type, n.payload.get("status"))
        for n in recorder.all()
        if n.event_type.startswith("image.member")
    ]
    assert events == [
        ("image.member.create", "pending"),
        ("image.member.update", "accepted"),
        ("image.member.delete", "accepted"),
    ]
    assert recorder.of_type("image.member.delete")[0].payload["deleted"] is True


def test_non_owner_cannot_delete(tenant_factory: Any, sim_cloud: Cloud) -> None:
    owner, other = tenant_factory(), tenant_factory()
    iid = owner.image("public-one", visibility="public")
    with pytest.raises(exceptions.ForbiddenException):
        other.conn.image.delete_image(iid)
    assert iid in sim_cloud.image.images


def test_create_and_upload_image(tenant: Tenant) -> None:
    image = tenant.conn.image.create_image(
        name="uploaded",
        data=b"qcow2 bytes",
        disk_format="qcow2",
        container_format="bare",
        allow_duplicates=True,
    )
    got = tenant.conn.image.get_image(image.id)
    assert got.status == "active" and got.size == len(b"qcow2 bytes")
    assert got.owner == tenant.project_id
