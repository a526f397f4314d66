"""A project whose allocation ended, cleaned up through the real services: its servers,
volumes, snapshots, networks, subnets, routers, ports, floating IPs, security groups and
images go; another project, its shared network and its image (shared with the ended
project), and the cloud's public image stay exactly as they were. The cloud has no Swift,
and the ended project's router has an interface on the other project's shared network. What
cannot go (a protected image) is reported as left over. An exempt server is kept with what
it uses (its attached volume still attached), a server with a volume attached goes with the
volume, and a dry run of the cleanup says so without one mutating request.

"Sweeping safely" claims checked here: cleanup with a token scoped to the project as a user
with no admin role, granted member for the cleanup and revoked after; another project's
resources never touched, routers included; leftovers re-listed and reported
(``cleanup_leftovers``); the summary, audit and ``project_cleaned`` notice list what was
deleted (subnets and router interfaces included) and kept; exempt servers kept with their
volumes, snapshots, ports, networks, subnets, security groups, floating IPs and routers; a
dry run says what it would keep and makes no mutating request.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import openstack.connection

from tests.openstack import harness
from tests.openstack.conftest import (
    PASSWORD,
    AccessLog,
    Listener,
    boot,
    iso,
    mutating,
    reclaim,
    reclaim_env,
    reclaim_json,
    sweep_delivered,
    timers,
    user_entry,
    wait_for,
)
from tests.support.bus_tap import BusTap


def connect_as(entry: dict[str, Any]) -> Any:
    return openstack.connection.Connection(**entry)


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
        "snapshots": {x.id for x in admin.block_storage.snapshots(all_projects=True, project_id=p)},
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


def projects(
    cloud: harness.Run, admin: Any, tmp_path: Path, tag: str, *names: str
) -> tuple[list[Any], dict[str, Any], Path, Any]:
    """Projects with a member user each (entries ``names`` in a clouds.yaml beside the
    admin's) and reclaim's cleanup user (entry ``cleaner``), which has no role on them: it
    is granted member for the cleanup only. The projects, the clouds, the file, the user."""
    member = admin.identity.find_role("member", ignore_missing=False)
    clouds: dict[str, Any] = json.loads(cloud.clouds_yaml.read_text())
    made = []
    for name in names:
        project = admin.identity.create_project(name=f"{name}-{tag}", domain_id="default")
        user = admin.identity.create_user(
            name=f"{name}-user-{tag}", password=PASSWORD, domain_id="default"
        )
        admin.identity.assign_project_role_to_user(project, user, member)
        clouds["clouds"][name] = user_entry(cloud, user.name, project.name)
        made.append(project)
    home = admin.identity.create_project(name=f"cleaner-home-{tag}", domain_id="default")
    cleaner = admin.identity.create_user(
        name=f"cleaner-{tag}", password=PASSWORD, domain_id="default"
    )
    admin.identity.assign_project_role_to_user(home, cleaner, member)
    clouds["clouds"]["cleaner"] = user_entry(cloud, cleaner.name, home.name)
    config = tmp_path / "clouds.yaml"
    config.write_text(json.dumps(clouds))
    return made, clouds, config, cleaner


def ended_allocation(
    cloud: harness.Run, admin: Any, store_url: str, project_id: str, config: Path
) -> dict[str, str]:
    """``reclaim allocation end`` for the project, its cleanup timer stored by ``reclaim
    listen``, and the end recorded in Keystone as the allocation system would (the sweeper
    holds a cleanup Keystone does not confirm); the environment of the sweeps."""
    env = reclaim_env(cloud, store_url, **_extra(config))
    listener = Listener(cloud, store_url)
    try:
        out = reclaim(cloud, store_url, "allocation", "end", project_id, env=env)
        assert out.returncode == 0, out.stderr
        wait_for(
            lambda: any(
                r["resource_id"] == project_id and r["action"] == "cleanup"
                for r in timers(cloud, store_url)
            )
        )
    finally:
        listener.stop()
    end = datetime.now(UTC).date().isoformat()
    admin.identity.patch(f"/projects/{project_id}", json={"project": {"allocation_end": end}})
    return env


#: When the cleanup sweep runs: a little after the 180 days of the policy.
CLEANUP_AT = timedelta(days=180, hours=14)


def sweep_to_cleanup(cloud: harness.Run, store_url: str, config: Path, **extra: str) -> Any:
    """The notices 30, 7 and 1 d before (delivered), then the cleanup's sweep: its report."""
    env = _extra(config)
    for days in (150, 173, 179):
        sweep_delivered(cloud, store_url, timedelta(days=days, hours=12), **env, **extra)
    return reclaim_json(cloud, store_url, "sweep", "--now", iso(CLEANUP_AT), **env, **extra)


def state(admin: Any, other: Any, shared: Any, subnet: Any, image: Any) -> dict[str, Any]:
    """Everything an administrator reads of the other project's resources and the cloud's
    public image, field by field."""
    public = admin.image.find_image("reclaim-test-image", ignore_missing=False)
    return {
        "inventory": inventory(admin, other.id),
        "network": admin.network.get_network(shared.id).to_dict(computed=False),
        "subnet": admin.network.get_subnet(subnet.id).to_dict(computed=False),
        "image": admin.image.get_image(image.id).to_dict(computed=False),
        "members": sorted((m.member_id, m.status) for m in admin.image.members(image.id)),
        "public": admin.image.get_image(public.id).to_dict(computed=False),
        "servers": [
            admin.compute.get_server(x).to_dict(computed=False)
            for x in sorted(inventory(admin, other.id)["servers"])
        ],
    }


def test_ended_project_is_cleaned_up_and_the_other_project_left_alone(
    cloud: harness.Run, admin: Any, store_url: str, tmp_path: Path, tap: BusTap
) -> None:
    tag = uuid.uuid4().hex[:6]
    (ended, other), clouds, config, cleaner = projects(
        cloud, admin, tmp_path, tag, "ended", "other"
    )
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
        name=f"other-img-{tag}",
        data=b"x" * 64,
        disk_format="raw",
        container_format="bare",
        visibility="shared",
    )
    # shared with the ended project, which accepted it: it lists among its images
    theirs.image.add_member(their_image, member_id=ended.id)
    mine.image.update_member(ended.id, their_image, status="accepted")
    public = external_network(admin)

    # the ended project: a bit of everything, and a router on the other's shared network
    server = boot(mine, f"ended-vm-{tag}")
    volume = mine.block_storage.create_volume(size=1, name=f"ended-vol-{tag}")
    mine.block_storage.wait_for_status(volume, "available", wait=300, interval=1)
    snapshot = mine.block_storage.create_snapshot(volume_id=volume.id, name=f"ended-snap-{tag}")
    mine.block_storage.wait_for_status(snapshot, "available", wait=300, interval=1)
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
    # an image the cleanup cannot delete: left over, and reported
    protected = mine.image.create_image(
        name=f"ended-protected-{tag}", data=b"p" * 64, disk_format="raw", container_format="bare"
    )
    mine.image.update_image(protected, is_protected=True)
    before = inventory(admin, ended.id)
    assert all(before.values()), before
    theirs_before = state(admin, other, shared, shared_subnet, their_image)
    assert their_image.id in {i.id for i in mine.image.images()}
    assert server.id in before["servers"]

    env = ended_allocation(cloud, admin, store_url, ended.id, config)
    report = sweep_to_cleanup(cloud, store_url, config)
    (cleanup,) = [o for o in report["outcomes"] if o["action"] == "cleanup"]
    assert cleanup["result"] == "done", cleanup["reason"]
    reason = cleanup["reason"]
    # the cloud has no Swift: skipped and said so, not an error after the deletions
    assert "skipped object-store (not in the cloud's catalog)" in reason
    # the summary names what went, the subnet and both router interfaces (the one on the
    # other project's shared network detached first) included
    for gone in ("servers 1", "volumes 1", "snapshots 1", "images 1", "networks 1",
                 "subnets 1", "routers 1", "router_interfaces 2", "ports 1",
                 "floating_ips 1", "security_groups 1"):  # fmt: skip
        assert gone in reason, (gone, reason)
    assert f"left images: {protected.id}" in reason, reason
    assert "cleanup_leftovers" in tap.kinds(ended.id)
    cleaned = [p for p in tap.payloads() if p["kind"] == "project_cleaned"]
    assert cleaned and "subnets 1" in cleaned[-1]["detail"]["deleted"], cleaned
    audit = reclaim(cloud, store_url, "audit", "project", ended.id, "--json", env=env)
    assert subnet.id in audit.stdout and on_shared.id in audit.stdout, audit.stdout

    after = inventory(admin, ended.id)
    assert after == {k: ({protected.id} if k == "images" else set()) for k in after}, after
    assert state(admin, other, shared, shared_subnet, their_image) == theirs_before
    assert admin.compute.get_server(their_server.id).status == "ACTIVE"
    # the role granted to the cleanup user for the cleanup was taken back
    assert not list(admin.identity.role_assignments(user_id=cleaner.id, scope_project_id=ended.id))
    admin.image.update_image(protected, is_protected=False)
    admin.image.delete_image(protected)
    admin.compute.delete_server(their_server)


def test_cleanup_keeps_an_exempt_server_and_what_it_uses_and_its_dry_run_changes_nothing(
    cloud: harness.Run, admin: Any, store_url: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    (ended,), clouds, config, _cleaner = projects(cloud, admin, tmp_path, tag, "keeping")
    mine = connect_as(clouds["clouds"]["keeping"])
    public = external_network(admin)
    kept_server = boot(mine, f"course-{tag}", metadata={"reclaim:exempt": "true"})
    scratch = boot(mine, f"scratch-{tag}")
    volume = mine.block_storage.create_volume(size=1, name=f"course-vol-{tag}")
    scratch_volume = mine.block_storage.create_volume(size=1, name=f"scratch-vol-{tag}")
    for v in (volume, scratch_volume):
        mine.block_storage.wait_for_status(v, "available", wait=300, interval=1)
    # each server with a volume attached: the cleanup deletes the scratch server and then
    # its volume (Nova detaches it as the server goes), the exempt one keeps its own
    mine.compute.create_volume_attachment(kept_server, volume_id=volume.id)
    mine.compute.create_volume_attachment(scratch, volume_id=scratch_volume.id)
    for v in (volume, scratch_volume):
        mine.block_storage.wait_for_status(v, "in-use", wait=300, interval=1)
    snapshot = mine.block_storage.create_snapshot(
        volume_id=volume.id, name=f"course-snap-{tag}", force=True
    )
    mine.block_storage.wait_for_status(snapshot, "available", wait=300, interval=1)
    net = mine.network.create_network(name=f"course-net-{tag}")
    sub = mine.network.create_subnet(
        network_id=net.id, ip_version=4, cidr="10.99.0.0/24", name=f"course-sub-{tag}"
    )
    router = mine.network.create_router(
        name=f"course-router-{tag}", external_gateway_info={"network_id": public.id}
    )
    mine.network.add_interface_to_router(router, subnet_id=sub.id)
    group = mine.network.create_security_group(name=f"course-sg-{tag}")
    # the server's port as Neutron records it (the fake compute driver plugs no port: the
    # cloud has no agents to bind one), with its group and a floating IP
    port = admin.network.create_port(
        network_id=net.id,
        project_id=ended.id,
        device_id=kept_server.id,
        device_owner="compute:nova",
        security_groups=[group.id],
        name=f"course-port-{tag}",
    )
    ip = mine.network.create_ip(floating_network_id=public.id, port_id=port.id)
    mine.network.create_security_group(name=f"scratch-sg-{tag}")
    kept = {
        "servers": {kept_server.id},
        "volumes": {volume.id},
        "snapshots": {snapshot.id},
        "networks": {net.id},
        "subnets": {sub.id},
        "routers": {router.id},
        "floating_ips": {ip.id},
        "security_groups": {group.id},
    }
    before = inventory(admin, ended.id)
    for kind, ids in kept.items():
        assert ids <= before[kind], (kind, before)
    env = ended_allocation(cloud, admin, store_url, ended.id, config)
    for days in (150, 173, 179):
        sweep_delivered(cloud, store_url, timedelta(days=days, hours=12), **_extra(config))

    # the dry run: what would go and what would stay, and not one mutating request
    log = AccessLog(cloud)
    out = reclaim(
        cloud, store_url, "sweep", "--dry-run", "--now", iso(CLEANUP_AT), "--json", env=env
    )
    assert out.returncode == 0, out.stderr
    (dry,) = [o for o in json.loads(out.stdout)["outcomes"] if o["action"] == "cleanup"]
    assert dry["result"] == "would-act", dry
    assert "would delete" in dry["reason"] and "servers 1" in dry["reason"], dry["reason"]
    assert "keep" in dry["reason"] and "(exempt servers and what they use)" in dry["reason"]
    assert mutating(log.since()) == []
    assert inventory(admin, ended.id) == before

    report = reclaim_json(cloud, store_url, "sweep", "--now", iso(CLEANUP_AT), **_extra(config))
    (cleanup,) = [o for o in report["outcomes"] if o["action"] == "cleanup"]
    assert cleanup["result"] == "done", cleanup["reason"]
    assert "(exempt)" in cleanup["reason"], cleanup["reason"]
    assert "left" not in cleanup["reason"], cleanup["reason"]  # what is kept is no leftover
    assert "servers 1" in cleanup["reason"] and "volumes 1" in cleanup["reason"]
    after = inventory(admin, ended.id)
    for kind, ids in kept.items():
        assert ids <= after[kind], (kind, after)
    assert scratch.id not in after["servers"] and scratch_volume.id not in after["volumes"]
    attached = admin.block_storage.get_volume(volume.id)
    assert attached.status == "in-use", attached.status
    assert [a["server_id"] for a in attached.attachments] == [kept_server.id]
    assert admin.compute.get_server(kept_server.id).status == "ACTIVE"
    audit = reclaim(cloud, store_url, "audit", "project", ended.id, "--json", env=env)
    assert kept_server.id in audit.stdout and "reclaim:exempt=true" in audit.stdout


def _extra(config: Path) -> dict[str, str]:
    return {"OS_CLIENT_CONFIG_FILE": str(config), "RECLAIM_SWEEP__CLEANUP_CLOUD": "cleaner"}
