"""Keystone v3: discovery, scoped tokens, roles, catalog, clouds.yaml, notifications."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openstack
import pytest
import requests
from keystoneauth1 import exceptions as ks_exceptions
from openstack import exceptions

from reclaim_sim import ADMIN_CLOUD, Cloud, RecordingSink, SimServer
from tests.sim.conftest import Tenant

REFUSED = (ks_exceptions.Unauthorized, exceptions.SDKException)


def _token(server: SimServer, user: str, password: str, project: dict[str, Any]) -> Any:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": user, "domain": {"name": "Default"}, "password": password}
                },
            },
            "scope": {"project": project},
        }
    }
    return requests.post(f"{server.auth_url}/auth/tokens", json=body, timeout=5)


def test_version_discovery(sim_server: SimServer) -> None:
    root = requests.get(f"{sim_server.url}/identity", timeout=5)
    assert root.status_code == 300
    assert root.json()["versions"]["values"][0]["id"].startswith("v3")
    assert requests.get(sim_server.auth_url, timeout=5).json()["version"]["status"] == "stable"


def test_token_carries_only_roles_on_its_project(sim_server: SimServer, tenant: Tenant) -> None:
    reply = _token(sim_server, tenant.user_name, "password", {"id": tenant.project_id})
    assert reply.status_code == 201
    assert reply.headers["X-Subject-Token"]
    token = reply.json()["token"]
    assert {r["name"] for r in token["roles"]} == {"member", "reader"}
    assert token["project"]["id"] == tenant.project_id
    types = {entry["type"] for entry in token["catalog"]}
    assert {"identity", "compute", "image", "block-storage", "network", "object-store"} <= types
    swift = next(e for e in token["catalog"] if e["type"] == "object-store")
    assert swift["endpoints"][0]["url"].endswith(f"/AUTH_{tenant.project_id}")

    admin = _token(sim_server, "admin", "admin", {"name": "admin", "domain": {"name": "Default"}})
    assert "admin" in {r["name"] for r in admin.json()["token"]["roles"]}


def test_scope_without_role_or_to_disabled_project_is_401(
    sim_server: SimServer, tenant_factory: Any
) -> None:
    mine, other = tenant_factory(), tenant_factory()
    assert (
        _token(sim_server, mine.user_name, "password", {"id": other.project_id}).status_code == 401
    )
    assert _token(sim_server, mine.user_name, "wrong", {"id": mine.project_id}).status_code == 401
    sim_server.cloud.identity.update_project(mine.project_id, enabled=False)
    assert (
        _token(sim_server, mine.user_name, "password", {"id": mine.project_id}).status_code == 401
    )


def test_sdk_identity_round_trip(admin_conn: Any, tenant: Tenant) -> None:
    project = admin_conn.identity.get_project(tenant.project_id)
    assert project.name == tenant.project_name and project.is_enabled
    user = admin_conn.identity.get_user(tenant.user_id)
    assert user.email.endswith("@example.org")
    assignments = list(admin_conn.identity.role_assignments(scope_project_id=tenant.project_id))
    assert [a.user["id"] for a in assignments] == [tenant.user_id]
    admin_conn.identity.update_project(project, enabled=False, tags=["expired"])
    assert not admin_conn.identity.get_project(tenant.project_id).is_enabled


def test_member_cannot_list_projects(tenant: Tenant) -> None:
    with pytest.raises(exceptions.ForbiddenException):
        list(tenant.conn.identity.projects())


def test_connect_as_project_needs_a_role_and_an_enabled_project(
    sim_server: SimServer, admin_conn: Any, tenant: Tenant
) -> None:
    # the admin holds no role on the tenant's project: Keystone refuses the scope
    with pytest.raises(REFUSED):
        admin_conn.connect_as_project(tenant.project_name).current_project_id  # noqa: B018
    sim_server.cloud.identity.grant(sim_server.cloud.admin_user_id, tenant.project_id, "member")
    scoped = admin_conn.connect_as_project(tenant.project_name)
    assert scoped.current_project_id == tenant.project_id
    sim_server.cloud.identity.update_project(tenant.project_id, enabled=False)
    with pytest.raises(REFUSED):
        admin_conn.connect_as_project(tenant.project_name).current_project_id  # noqa: B018


def test_clouds_yaml_for_openstack_connect(
    sim_server: SimServer, tenant: Tenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = sim_server.write_clouds_yaml(tmp_path / "clouds.yaml")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))
    admin = openstack.connect(cloud=ADMIN_CLOUD)
    assert admin.current_project_id == sim_server.cloud.admin_project_id
    member = openstack.connect(cloud=f"sim-{tenant.project_name}")
    assert member.current_project_id == tenant.project_id


@pytest.mark.parametrize("fmt", ["basic", "cadf"])
def test_keystone_notifications(sim_cloud: Cloud, recorder: RecordingSink, fmt: str) -> None:
    sim_cloud.config.keystone_notification_format = fmt  # type: ignore[assignment]
    try:
        project = sim_cloud.identity.create_project(f"ks-{fmt}")
        sim_cloud.identity.update_project(project.id, enabled=False)
        sim_cloud.identity.delete_project(project.id)
    finally:
        sim_cloud.config.keystone_notification_format = "cadf"
    events = [(n.exchange, n.event_type) for n in recorder.all()]
    assert events == [
        ("keystone", "identity.project.created"),
        ("keystone", "identity.project.updated"),
        ("keystone", "identity.project.deleted"),
    ]
    deleted = recorder.all()[-1]
    assert deleted.payload["resource_info"] == project.id
    assert deleted.context == {}
    if fmt == "cadf":
        assert deleted.payload["action"] == "deleted.project"
        assert deleted.payload["target"] == {"typeURI": "data/security/project", "id": project.id}
        assert deleted.payload["eventType"] == "activity"
    else:
        assert deleted.payload == {"resource_info": project.id}
