"""Owners on a real Keystone: a project deleted (Keystone's own CADF notification on the real
bus) has the users of its community image warned from real Nova servers, and the image goes
from real Glance after the grace, the other project's image staying; the mailer finds its
addresses in real Keystone users and role assignments."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from reclaim.mailer.addresses import DirectoryAddresses, KeystoneDirectory
from reclaim.notices import NoticeMessage
from tests.openstack import harness
from tests.openstack.conftest import (
    PASSWORD,
    Listener,
    iso,
    member_of,
    reclaim_json,
    sweep_delivered,
    timers,
    wait_for,
)


def outcomes(report: dict[str, Any], resource_id: str, action: str) -> list[dict[str, Any]]:
    return [
        o for o in report["outcomes"] if o["resource_id"] == resource_id and o["action"] == action
    ]


def test_deleted_project_community_image_warned_then_deleted(
    cloud: harness.Run, admin: Any, store_url: str
) -> None:
    tag = uuid.uuid4().hex[:6]
    leaving, owner = member_of(cloud, admin, f"leaving-{tag}")
    _staying, user = member_of(cloud, admin, f"staying-{tag}")
    image = owner.image.create_image(
        name=f"community-{tag}",
        data=b"z" * 64,
        disk_format="raw",
        container_format="bare",
        visibility="community",
    )
    kept = user.image.create_image(
        name=f"own-{tag}", data=b"k" * 64, disk_format="raw", container_format="bare"
    )
    dependent = user.compute.create_server(
        name=f"dependent-{tag}", image_id=image.id, flavor_id="reclaim-tiny", networks="none"
    )
    user.compute.wait_for_server(dependent, status="ACTIVE", wait=300, interval=1)

    listener = Listener(cloud, store_url)
    try:
        admin.identity.delete_project(leaving)
        wait_for(
            lambda: (
                {"scan_dependents", "delete_images"}
                <= {r["action"] for r in timers(cloud, store_url) if r["resource_id"] == leaving.id}
            )
        )
    finally:
        listener.stop()

    report = reclaim_json(cloud, store_url, "sweep", "--now", iso(timedelta(minutes=5)))
    (scan,) = outcomes(report, leaving.id, "scan_dependents")
    assert scan["result"] == "done", scan["reason"]
    assert "1 dependent notice(s) for 1 image(s)" in scan["reason"], json.dumps(report)

    for days in (23, 29):  # the notices 7 and 1 d before, delivered
        sweep_delivered(cloud, store_url, timedelta(days=days, hours=12))
    report = reclaim_json(cloud, store_url, "sweep", "--now", iso(timedelta(days=30, hours=14)))
    (gone,) = outcomes(report, leaving.id, "delete_images")
    assert gone["result"] == "done", gone["reason"]
    assert admin.image.find_image(image.id, ignore_missing=True) is None
    assert admin.image.get_image(kept.id).status == "active"
    assert admin.compute.get_server(dependent.id).status == "ACTIVE"
    admin.compute.delete_server(dependent)


def test_mailer_resolves_addresses_from_real_keystone(cloud: harness.Run, admin: Any) -> None:
    tag = uuid.uuid4().hex[:6]
    project = admin.identity.create_project(name=f"mail-{tag}", domain_id="default")
    member = admin.identity.find_role("member", ignore_missing=False)
    reader = admin.identity.find_role("reader", ignore_missing=False)
    users = {}
    for name, email, role in (
        ("pi", f"pi-{tag}@example.edu", member),
        ("student", f"student-{tag}@example.edu", reader),
        ("silent", None, member),
    ):
        extra = {"email": email} if email else {}
        user = admin.identity.create_user(
            name=f"{name}-{tag}", password=PASSWORD, domain_id="default", **extra
        )
        admin.identity.assign_project_role_to_user(project, user, role)
        users[name] = user
    book = DirectoryAddresses(
        KeystoneDirectory(admin),
        fallback="help@example.edu",
        operators=("ops@example.edu",),
        member_roles=("member",),
    )

    def to(**fields: Any) -> list[str]:
        notice = NoticeMessage(
            kind="shelve_upcoming", resource_type="server", resource_id="srv-1", **fields
        )
        return [p.address for p in book.resolve(notice)]

    # the owner, by the address Keystone holds for the user
    assert to(project_id=project.id, user_id=users["pi"].id) == [f"pi-{tag}@example.edu"]
    # an owner without an address: the project's members (the member role only)
    assert to(project_id=project.id, user_id=users["silent"].id) == [f"pi-{tag}@example.edu"]
    # a project Keystone no longer has: the fallback contact and the operators
    admin.identity.delete_project(project)
    assert to(project_id=project.id, user_id=users["silent"].id) == [
        "help@example.edu",
        "ops@example.edu",
    ]


def test_deleted_user_basic_format_shared_snapshot_dependents_warned_then_deleted(
    cloud: harness.Run, admin: Any, store_url: str
) -> None:
    """A user deleted through a Keystone that sends the ``basic`` format: the Nova snapshot
    the user made (Nova records the user in the image) and shared with another project has
    its users in that project warned, and goes once Keystone no longer has the user."""
    tag = uuid.uuid4().hex[:6]
    _home, maker = member_of(cloud, admin, f"maker-{tag}")
    borrower_project, borrower = member_of(cloud, admin, f"borrower-{tag}")
    source = maker.compute.create_server(
        name=f"source-{tag}",
        image_id=admin.image.find_image("reclaim-test-image", ignore_missing=False).id,
        flavor_id="reclaim-tiny",
        networks="none",
    )
    maker.compute.wait_for_server(source, status="ACTIVE", wait=300, interval=1)
    snap = maker.compute.create_server_image(source, f"snap-{tag}")
    # the fake compute driver makes the image and uploads nothing: the maker uploads it,
    # keeping what Nova recorded in it (the user)
    wait_for(lambda: maker.compute.get_server(source.id).task_state is None)
    maker.image.update_image(snap, disk_format="raw", container_format="bare")
    put = maker.image.put(
        f"/images/{snap.id}/file",
        data=b"s" * 64,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert put.status_code == 204, put.text
    image = maker.image.wait_for_status(maker.image.get_image(snap.id), "active", wait=300)
    user_id = maker.current_user_id
    assert image.properties.get("user_id") == user_id or getattr(image, "user_id", None)
    maker.image.update_image(image, visibility="shared")
    maker.image.add_member(image, member_id=borrower_project.id)
    borrower.image.update_member(borrower_project.id, image, status="accepted")
    dependent = borrower.compute.create_server(
        name=f"borrowing-{tag}", image_id=image.id, flavor_id="reclaim-tiny", networks="none"
    )
    borrower.compute.wait_for_server(dependent, status="ACTIVE", wait=300, interval=1)

    name, url = harness.start_keystone(cloud, "basic")
    try:
        listener = Listener(cloud, store_url)
        try:
            # the deletion goes through the Keystone that speaks the basic format
            admin.session.delete(f"{url}/users/{user_id}", endpoint_filter=None)
            wait_for(
                lambda: (
                    {"scan_dependents", "delete_images"}
                    <= {
                        r["action"] for r in timers(cloud, store_url) if r["resource_id"] == user_id
                    }
                )
            )
        finally:
            listener.stop()
    finally:
        harness.stop_process(cloud, name)

    report = reclaim_json(cloud, store_url, "sweep", "--now", iso(timedelta(minutes=5)))
    (scan,) = outcomes(report, user_id, "scan_dependents")
    assert scan["result"] == "done", scan["reason"]
    assert "1 dependent notice(s) for 1 image(s)" in scan["reason"], json.dumps(report)
    for days in (23, 29):  # the notices 7 and 1 d before, delivered
        sweep_delivered(cloud, store_url, timedelta(days=days, hours=12))
    report = reclaim_json(cloud, store_url, "sweep", "--now", iso(timedelta(days=30, hours=14)))
    (gone,) = outcomes(report, user_id, "delete_images")
    assert gone["result"] == "done", gone["reason"]
    assert admin.image.find_image(image.id, ignore_missing=True) is None
    assert admin.compute.get_server(dependent.id).status == "ACTIVE"
    for server in (source, dependent):
        admin.compute.delete_server(server)
