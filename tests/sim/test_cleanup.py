"""openstacksdk's project_cleanup against the simulation: dry run, a real cleanup of a
seeded project, and the router problem of DESIGN §5 reproduced."""

from __future__ import annotations

import queue
from typing import Any

from reclaim_sim import Cloud, SimServer
from reclaim_sim.scenario import load_scenario
from tests.sim.conftest import Tenant


def _seed(cloud: Cloud, tenant: Tenant) -> dict[str, str]:
    p = tenant.project_name
    return load_scenario(
        cloud,
        {
            "images": [
                {"name": f"{p}-img", "owner": p},
                {"name": f"{p}-community", "owner": p, "visibility": "community"},
                {"name": f"{p}-protected", "owner": p, "protected": True},
                {"name": f"{p}-hidden", "owner": p, "os_hidden": True},
            ],
            "networks": [{"name": f"{p}-net", "project": p, "cidr": "10.9.0.0/24"}],
            "routers": [
                {"name": f"{p}-router", "project": p, "external": True, "interfaces": [f"{p}-net"]}
            ],
            "security_groups": [
                {
                    "name": f"{p}-web",
                    "project": p,
                    "rules": [
                        {
                            "direction": "ingress",
                            "protocol": "tcp",
                            "port_range_min": 80,
                            "port_range_max": 80,
                            "remote_ip_prefix": "0.0.0.0/0",
                        }
                    ],
                }
            ],
            "volumes": [{"name": f"{p}-vol", "project": p, "size": 5}],
            "servers": [
                {"name": f"{p}-vm1", "project": p, "image": f"{p}-img", "network": f"{p}-net"},
                {
                    "name": f"{p}-vm2",
                    "project": p,
                    "image": f"{p}-img",
                    "state": "shelved_offloaded",
                    "age": "200d",
                },
            ],
            "containers": [{"project": p, "name": "data", "objects": {"a.txt": "x", "b.txt": "y"}}],
        },
    )


def _remaining(cloud: Cloud, pid: str) -> dict[str, list[str]]:
    out = {
        "servers": sorted(s.name for s in cloud.compute.servers.values() if s.project_id == pid),
        "images": sorted(str(i.name) for i in cloud.image.images.values() if i.owner == pid),
        "volumes": sorted(v.name for v in cloud.volume.volumes.values() if v.project_id == pid),
        "containers": sorted(cloud.object_store.accounts.get(pid, {})),
    }
    for coll, table in cloud.network.tables.items():
        if coll != "security-group-rules":
            out[coll] = sorted(
                r.get("name") or r["device_owner"] for r in table.values() if r["project_id"] == pid
            )
    return out


def test_dry_run_lists_and_changes_nothing(sim_cloud: Cloud, tenant: Tenant) -> None:
    ids = _seed(sim_cloud, tenant)
    before = _remaining(sim_cloud, tenant.project_id)
    conn = tenant.conn
    conn.compute.servers()  # authenticate first so the log below holds only the cleanup
    sim_cloud.requests.clear()
    found: queue.Queue[Any] = queue.Queue()
    conn.project_cleanup(dry_run=True, status_queue=found, wait_timeout=30)
    assert sim_cloud.requests.mutating_requests() == []
    assert _remaining(sim_cloud, tenant.project_id) == before
    identified = {r.id for r in found.queue}
    p = tenant.project_name
    for name in (
        f"server:{p}-vm1",
        f"server:{p}-vm2",
        f"image:{p}-img",
        f"volume:{p}-vol",
        f"router:{p}-router",
        f"network:{p}-net",
        f"security_group:{p}-web",
    ):
        assert ids[name] in identified, name
    assert ids[f"image:{p}-hidden"] not in identified


def test_real_cleanup_of_a_seeded_project(sim_cloud: Cloud, tenant: Tenant) -> None:
    _seed(sim_cloud, tenant)
    tenant.conn.project_cleanup(dry_run=False, wait_timeout=60)
    p = tenant.project_name
    left = _remaining(sim_cloud, tenant.project_id)
    assert left == {
        "servers": [],
        "volumes": [],
        "containers": [],
        # protected images cannot be deleted; hidden ones are not listed by default
        "images": [f"{p}-hidden", f"{p}-protected"],
        "networks": [],
        "subnets": [],
        "ports": [],
        "routers": [],
        "floatingips": [],
        "security-groups": ["default"],  # project_cleanup skips the default group
    }
    assert sim_cloud.compute.servers == {
        k: v for k, v in sim_cloud.compute.servers.items() if v.project_id != tenant.project_id
    }


def test_admin_token_cleanup_deletes_other_projects_routers() -> None:
    """DESIGN §5: the router step lists routers without a project filter, so with an
    admin-role token it deletes every port-less router in the cloud."""
    cloud = Cloud()
    load_scenario(
        cloud,
        {
            "projects": [{"name": "expired"}, {"name": "bystander"}],
            "users": [
                {"name": "operator", "roles": {"expired": ["admin"]}},
                {"name": "carol", "roles": {"bystander": "member"}},
            ],
            "routers": [
                {"name": "expired-router", "project": "expired"},
                {"name": "bystander-router", "project": "bystander"},
                {"name": "bystander-gw-router", "project": "bystander", "external": True},
            ],
        },
    )
    with SimServer(cloud) as server:
        conn = server.connect("operator", "expired")
        conn.project_cleanup(dry_run=False, wait_timeout=30)
        remaining = sorted(r["name"] for r in cloud.network.routers.values())
        deletes = [
            r
            for r in cloud.requests.filter(
                service="network", method="DELETE", path_regex="/routers/"
            )
        ]
    # the bystander's router went too; only the one holding a gateway port survived
    assert remaining == ["bystander-gw-router"]
    assert len(deletes) == 2 and {d.project_id for d in deletes} == {
        cloud.identity.project("expired").id
    }
    cloud.close()


def test_member_token_cleanup_keeps_other_projects_routers() -> None:
    cloud = Cloud()
    load_scenario(
        cloud,
        {
            "projects": [{"name": "expired"}, {"name": "bystander"}],
            "users": [{"name": "member", "roles": {"expired": "member"}}],
            "routers": [
                {"name": "expired-router", "project": "expired"},
                {"name": "bystander-router", "project": "bystander"},
            ],
        },
    )
    with SimServer(cloud) as server:
        server.connect("member", "expired").project_cleanup(dry_run=False, wait_timeout=30)
    assert [r["name"] for r in cloud.network.routers.values()] == ["bystander-router"]
    cloud.close()
