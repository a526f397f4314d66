"""Request ids on every answer, and the calls a client may make that the simulation once
answered with a success-looking 404 or 405: served as the real service does, or a 501 that
says the simulation does not implement them."""

from __future__ import annotations

from typing import Any

import pytest
from openstack import exceptions

from reclaim_sim import Cloud, RecordingSink, SimServer
from tests.sim.conftest import Tenant

#: one call per simulated service: (service type, path below its endpoint)
EVERY_SERVICE = [
    ("identity", "/v3/projects"),
    ("compute", "/servers"),
    ("image", "/v2/images"),
    ("block-storage", "/volumes"),
    ("network", "/v2.0/networks"),
    ("object-store", ""),
]


@pytest.mark.parametrize(("service", "path"), EVERY_SERVICE)
def test_every_service_answers_with_its_request_id(
    admin_conn: Any, service: str, path: str
) -> None:
    ok = admin_conn.session.get(path, endpoint_filter={"service_type": service})
    missing = admin_conn.session.get(
        path + "/no-such-thing", endpoint_filter={"service_type": service}, raise_exc=False
    )
    for response in (ok, missing):
        rid = response.headers.get("X-OpenStack-Request-Id", "")
        assert rid.startswith("req-") and len(rid) == 40, (service, response.status_code)
    assert ok.headers["X-OpenStack-Request-Id"] != missing.headers["X-OpenStack-Request-Id"]
    if service == "compute":
        assert ok.headers["X-Compute-Request-Id"] == ok.headers["X-OpenStack-Request-Id"]


def test_nova_notifications_carry_the_request_id_of_the_call(
    tenant: Tenant, recorder: RecordingSink
) -> None:
    sid = tenant.boot("traced")
    recorder.clear()
    response = tenant.conn.session.post(
        f"/servers/{sid}/action",
        json={"os-stop": None},
        endpoint_filter={"service_type": "compute"},
    )
    rid = response.headers["X-OpenStack-Request-Id"]
    (end,) = [n for n in recorder.all() if n.event_type == "instance.power_off.end"]
    assert end.context["request_id"] == rid
    assert end.payload["nova_object.data"]["request_id"] == rid


def test_an_api_the_simulation_lacks_is_a_501_that_says_so(tenant: Tenant) -> None:
    sid = tenant.boot("migrant")
    with pytest.raises(exceptions.HttpException) as caught:
        tenant.conn.compute.migrate_server(sid)
    assert caught.value.status_code == 501
    assert "simulated cloud" in str(caught.value) and "does not implement" in str(caught.value)
    for service, path, method in [
        ("compute", "/os-hypervisors", "GET"),
        ("image", "/v2/tasks", "GET"),
        ("compute", f"/servers/{sid}/metadata", "DELETE"),  # a route, not that method
    ]:
        response = tenant.conn.session.request(
            path, method, endpoint_filter={"service_type": service}, raise_exc=False
        )
        assert response.status_code == 501, (service, path, method)
        assert "reclaim_sim" in response.text


def test_a_revoked_token_stops_working(sim_server: SimServer, tenant: Tenant) -> None:
    conn = tenant.conn
    token = conn.session.get_token()
    assert conn.session.get(
        "/v3/auth/tokens",
        endpoint_filter={"service_type": "identity"},
        headers={"X-Subject-Token": token},
    ).ok
    revoked = conn.session.delete(
        "/v3/auth/tokens",
        endpoint_filter={"service_type": "identity"},
        headers={"X-Subject-Token": token},
    )
    assert revoked.status_code == 204
    stale = sim_server.cloud.identity.context_for_token(token)
    assert stale is None
    again = sim_server.connect().session.delete(
        "/v3/auth/tokens",
        endpoint_filter={"service_type": "identity"},
        headers={"X-Subject-Token": token},
        raise_exc=False,
    )
    assert again.status_code == 404


def test_create_image_snapshots_the_server_into_glance(tenant: Tenant, sim_cloud: Cloud) -> None:
    sid = tenant.boot("snapped")
    image = tenant.conn.compute.create_server_image(sid, "snap-1", metadata={"k": "v"}, wait=True)
    got = tenant.conn.image.get_image(image.id)
    assert (got.name, got.status, got.visibility, got.owner) == (
        "snap-1",
        "active",
        "private",
        tenant.project_id,
    )
    assert got.properties["image_type"] == "snapshot"
    assert got.instance_uuid == sid and got.properties["k"] == "v"
    assert tenant.conn.compute.get_server(sid).task_state is None
    sim_cloud.compute.action(sim_cloud.admin_ctx(), sid, "shelve")
    with pytest.raises(exceptions.ConflictException, match="vm_state shelved_offloaded"):
        tenant.conn.compute.create_server_image(sid, "snap-2")


def test_rescue_and_unrescue(tenant: Tenant) -> None:
    sid = tenant.boot("rescued")
    tenant.conn.compute.rescue_server(sid)
    got = tenant.conn.compute.get_server(sid)
    assert (got.status, got.vm_state) == ("RESCUE", "rescued")
    tenant.conn.compute.unrescue_server(sid)
    assert tenant.conn.compute.get_server(sid).status == "ACTIVE"
    with pytest.raises(exceptions.ConflictException):
        tenant.conn.compute.unrescue_server(sid)


def test_keypairs_belong_to_their_user(tenant_factory: Any) -> None:
    ana, bob = tenant_factory("kp"), tenant_factory("kp")
    public = (
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMzTrqbvsYVhT1qhFWe2HKI5Pda8cGqKZ1kMx2Qz3Qya ana@lab"
    )
    made = ana.conn.compute.create_keypair(name="laptop", public_key=public)
    assert made.fingerprint.count(":") == 15 and made.public_key == public
    assert [k.name for k in ana.conn.compute.keypairs()] == ["laptop"]
    assert ana.conn.compute.get_keypair("laptop").fingerprint == made.fingerprint
    assert list(bob.conn.compute.keypairs()) == []
    with pytest.raises(exceptions.ConflictException):
        ana.conn.compute.create_keypair(name="laptop", public_key=public)
    with pytest.raises(exceptions.BadRequestException, match="fingerprint"):
        bob.conn.compute.create_keypair(name="broken", public_key="ssh-rsa not-base64!")
    ana.conn.compute.delete_keypair("laptop")
    with pytest.raises(exceptions.NotFoundException):
        ana.conn.compute.get_keypair("laptop")


def test_image_deactivate_is_an_admins_and_blocks_download(admin_conn: Any, tenant: Tenant) -> None:
    iid = tenant.image("to-deactivate")

    def deactivate(conn: Any, image_id: str) -> int:
        # openstacksdk's deactivate_image does not look at the answer: ask directly
        response = conn.session.post(
            f"/v2/images/{image_id}/actions/deactivate",
            endpoint_filter={"service_type": "image"},
            raise_exc=False,
        )
        return int(response.status_code)

    assert deactivate(tenant.conn, iid) == 403, "Glance's default policy: admins only"
    assert tenant.conn.image.get_image(iid).status == "active"
    admin_conn.image.deactivate_image(iid)
    assert tenant.conn.image.get_image(iid).status == "deactivated"
    download = tenant.conn.session.get(
        f"/v2/images/{iid}/file", endpoint_filter={"service_type": "image"}, raise_exc=False
    )
    assert download.status_code == 403 and "deactivated" in download.text
    admin_conn.image.reactivate_image(iid)
    assert tenant.conn.image.get_image(iid).status == "active"
    assert deactivate(admin_conn, tenant.image("still-queued", status="queued")) == 403


def test_image_tags_are_added_and_removed_one_by_one(tenant: Tenant, admin_conn: Any) -> None:
    iid = tenant.image("tagged")
    image = tenant.conn.image.get_image(iid)
    tenant.conn.image.add_tag(image, "gpu")
    tenant.conn.image.add_tag(image, "gpu")
    tenant.conn.image.add_tag(image, "cuda")
    assert sorted(tenant.conn.image.get_image(iid).tags) == ["cuda", "gpu"]
    tenant.conn.image.remove_tag(image, "gpu")
    assert tenant.conn.image.get_image(iid).tags == ["cuda"]
    with pytest.raises(exceptions.NotFoundException):
        tenant.conn.image.remove_tag(image, "gpu")


def test_admins_see_novas_extended_server_attributes(admin_conn: Any, tenant: Tenant) -> None:
    sid = tenant.boot("extended")
    seen = admin_conn.compute.get_server(sid)
    assert (seen.hostname, seen.launch_index, seen.root_device_name) == ("extended", 0, "/dev/vda")
    assert seen.reservation_id and seen.instance_name
    mine = tenant.conn.compute.get_server(sid)
    assert mine.reservation_id is None and mine.instance_name is None
    assert mine.security_groups is None, "no port, no security group (as Nova shows it)"


def test_a_role_is_found_by_name_after_keystones_404_by_id(admin_conn: Any, tenant: Tenant) -> None:
    by_name = admin_conn.session.get(
        "/v3/roles/member", endpoint_filter={"service_type": "identity"}, raise_exc=False
    )
    assert by_name.status_code == 404, "Keystone looks roles up by id only"
    role = admin_conn.identity.find_role("member")
    assert role.name == "member"
    assert admin_conn.identity.get_role(role.id).name == "member"
    (assignment,) = admin_conn.identity.role_assignments(
        user_id=tenant.user_id, scope_project_id=tenant.project_id, include_names=True
    )
    assert assignment.links["assignment"].endswith(
        f"/v3/projects/{tenant.project_id}/users/{tenant.user_id}/roles/{role.id}"
    )
    assert assignment.user["domain"] == {"id": "default", "name": "Default"}
