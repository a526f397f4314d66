"""A project whose allocation ended, cleaned up through the real services: its servers,
volumes, networks, subnets, routers, ports, floating IPs, security groups and images go;
another project, its shared network and its image stay exactly as they were. The cloud has
no Swift, and the ended project's router has an interface on the other project's shared
network."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import openstack.connection

from tests.openstack import harness
from tests.openstack.conftest import (
    Listener,
    boot,
    iso,
    reclaim,
    reclaim_env,
    reclaim_json,
    sweep_delivered,
    timers,
    wait_for,
)

PASSWORD = "project-user-pw"


def connect_as(entry: dict[str, Any]) -> Any:
    return openstack.connection.Connection(**entry)


def user_entry(cloud: harness.Run, user: str, project: str) -> dict[str, Any]:
    return {
        "auth": {
            "auth_url": cloud.auth_url,
            "username": user,
            "password": PASSWORD,
            "project_name": project,
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
        "region_name": harness.REGION,
        "identity_api_version": 3,
    }


def external_network(admin: Any) -> Any:
    """The cloud's external network (flat, physical network ``public``), made once."""
    found = admin.network.find_network("public")
    if found is not None:
        return found
    public = admin.network.create_network(
        name="public",
        is_router_external=True,
        provider_network_type="flat",
        provider_physical_network="public",
    )
    admin.network.create_subnet(
        network_id=public.id, ip_version=4, cidr="172.24.4.0/24", name="public-subnet"
    )
    return public


def inventory(admin: Any, project_id: str) -> dict[str, set[str]]:
    """Everything the project owns, as an administrator lists it."""
    p = project_id
    return {
        "servers": {s.id for s in admin.compute.servers(all_projects=True, project_id=p)},
        "volumes": {v.id for v in admin.block_storage.volumes(all_projects=True, project_id=p)},
        "images": {i.id for i in admin.image.images(owner=p) if i.owner == p},
        "networks": {n.id for n in admin.network.networks(project_id=p)},
        "subnets": {s.id for s in admin.network.subnets(project_id=p)},
        "routers": {r.id for r in admin.network.routers(project_id=p)},
        "ports": {x.id for x in admin.network.ports(project_id=p)},
        "floating_ips": {x.id for x in admin.network.ips(project_id=p)},
        "security_groups": {
            g.id for g in admin.network.security_groups(project_id=p) if g.name != "default"
        },
    }


def test_ended_project_is_cleaned_up_and_the_other_project_left_alone(
    cloud: harness.Run, admin: Any, store_url: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    ended = admin.identity.create_project(name=f"ended-{tag}", domain_id="default")
    other = admin.identity.create_project(name=f"other-{tag}", domain_id="default")
    member = admin.identity.find_role("member", ignore_missing=False)
    clouds: dict[str, Any] = json.loads(cloud.clouds_yaml.read_text())
    for name, project in (("ended", ended), ("other", other)):
        user = admin.identity.create_user(
            name=f"{name}-user-{tag}", password=PASSWORD, domain_id="default"
        )
        admin.identity.assign_project_role_to_user(project, user, member)
        clouds["clouds"][name] = user_entry(cloud, user.name, project.name)
    # reclaim's cleanup user: no role anywhere (granted member for the cleanup only)
    home = admin.identity.create_project(name=f"cleaner-home-{tag}", domain_id="default")
    cleaner = admin.identity.create_user(
        name=f"cleaner-{tag}", password=PASSWORD, domain_id="default"
    )
    admin.identity.assign_project_role_to_user(home, cleaner, member)
    clouds["clouds"]["cleaner"] = user_entry(cloud, cleaner.name, home.name)
    config = tmp_path / "clouds.yaml"
    config.write_text(json.dumps(clouds))
    mine, theirs = connect_as(clouds["clouds"]["ended"]), connect_as(clouds["clouds"]["other"])

    # the other project: a server, a shared network (with a subnet), an image
    # (sharing a network takes an administrator, on the other project's behalf)
    shared = admin.network.create_network(name=f"shared-{tag}", shared=True, project_id=other.id)
    shared_subnet = admin.network.create_subnet(
        network_id=shared.id,
        ip_version=4,
        cidr="10.77.0.0/24",
        name=f"shared-sub-{tag}",
        project_id=other.id,
    )
    their_server = boot(theirs, f"other-vm-{tag}")
    their_image = theirs.image.create_image(
        name=f"other-img-{tag}", data=b"x" * 64, disk_format="raw", container_format="bare"
    )
    public = external_network(admin)

    # the ended project: a bit of everything, and a router on the other's shared network
    server = boot(mine, f"ended-vm-{tag}")
    volume = mine.block_storage.create_volume(size=1, name=f"ended-vol-{tag}")
    mine.block_storage.wait_for_status(volume, "available", wait=300, interval=1)
    net = mine.network.create_network(name=f"ended-net-{tag}")
    subnet = mine.network.create_subnet(
        network_id=net.id, ip_version=4, cidr="10.88.0.0/24", name=f"ended-sub-{tag}"
    )
    router = mine.network.create_router(
        name=f"ended-router-{tag}", external_gateway_info={"network_id": public.id}
    )
    mine.network.add_interface_to_router(router, subnet_id=subnet.id)
    # a subnet of another project is attached through a port of one's own on it
    on_shared = mine.network.create_port(network_id=shared.id, name=f"ended-on-shared-{tag}")
    mine.network.add_interface_to_router(router, port_id=on_shared.id)
    mine.network.create_port(network_id=net.id, name=f"ended-port-{tag}")
    mine.network.create_ip(floating_network_id=public.id)
    mine.network.create_security_group(name=f"ended-sg-{tag}")
    mine.image.create_image(
        name=f"ended-img-{tag}", data=b"y" * 64, disk_format="raw", container_format="bare"
    )
    before = inventory(admin, ended.id)
    assert all(before.values()), before
    theirs_before = inventory(admin, other.id)
    assert server.id in before["servers"]

    env = reclaim_env(
        cloud,
        store_url,
        OS_CLIENT_CONFIG_FILE=str(config),
        RECLAIM_SWEEP__CLEANUP_CLOUD="cleaner",
    )
    listener = Listener(cloud, store_url)
    try:
        out = reclaim(cloud, store_url, "allocation", "end", ended.id, env=env)
        assert out.returncode == 0, out.stderr
        wait_for(
            lambda: any(
                r["resource_id"] == ended.id and r["action"] == "cleanup"
                for r in timers(cloud, store_url)
            )
        )
    finally:
        listener.stop()
    # Keystone's record confirms the end (the sweeper holds a cleanup it does not confirm)
    end = datetime.now(UTC).date().isoformat()
    admin.identity.patch(f"/projects/{ended.id}", json={"project": {"allocation_end": end}})
    extra = {"OS_CLIENT_CONFIG_FILE": str(config), "RECLAIM_SWEEP__CLEANUP_CLOUD": "cleaner"}
    for days in (150, 173, 179):  # the notices 30, 7 and 1 d before, delivered
        sweep_delivered(cloud, store_url, timedelta(days=days, hours=12), **extra)
    report = reclaim_json(
        cloud, store_url, "sweep", "--now", iso(timedelta(days=180, hours=14)), **extra
    )
    (cleanup,) = [o for o in report["outcomes"] if o["action"] == "cleanup"]
    assert cleanup["result"] == "done", cleanup["reason"]
    # the cloud has no Swift: skipped and said so, not an error after the deletions
    assert "skipped object-store (not in the cloud's catalog)" in cleanup["reason"]
    assert "left" not in cleanup["reason"], cleanup["reason"]

    after = inventory(admin, ended.id)
    assert after == {k: set() for k in after}, after
    assert inventory(admin, other.id) == theirs_before
    assert admin.compute.get_server(their_server.id).status == "ACTIVE"
    assert admin.network.get_network(shared.id).is_shared
    assert admin.network.get_subnet(shared_subnet.id)
    assert admin.image.get_image(their_image.id).status == "active"
