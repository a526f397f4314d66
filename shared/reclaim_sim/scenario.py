"""Seed a simulated cloud from a YAML scenario (projects, users, servers in given states...).

A scenario names things by name; references (``project: alpha``, ``image: ubuntu``) are
resolved in the order the sections are loaded: clock, config, projects, users, images,
networks, routers, security_groups, volumes, servers, containers. See
``scenarios/demo.yaml`` for every field.
"""

from __future__ import annotations

from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from reclaim.durations import parse_duration
from reclaim_sim.clock import SimClock, parse_time
from reclaim_sim.cloud import Cloud
from reclaim_sim.core import SimConfig
from reclaim_sim.notify import Driver


def demo_scenario_path() -> Path:
    """The scenario shipped with the package, used by ``reclaim sim serve`` by default."""
    return Path(str(resources.files("reclaim_sim") / "scenarios" / "demo.yaml"))


def read_scenario(source: str | Path | dict[str, Any]) -> dict[str, Any]:
    if isinstance(source, dict):
        return source
    data = yaml.safe_load(Path(source).read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{source}: a scenario is a YAML mapping")
    return data


def build_cloud(
    source: str | Path | dict[str, Any],
    *,
    transport_url: str | None = None,
    driver: Driver = "messagingv2",
    ticking: bool | None = None,
    **config: Any,
) -> Cloud:
    """A new :class:`Cloud` with the scenario's clock and config, seeded from it.

    Keyword ``config`` values override the scenario's ``config`` section.
    """
    data = read_scenario(source)
    start = parse_time(data["clock"]) if data.get("clock") else None
    clock = SimClock(
        start, ticking=bool(data.get("ticking", False) if ticking is None else ticking)
    )
    settings = SimConfig(**{**(data.get("config") or {}), **config})
    cloud = Cloud(clock=clock, config=settings, transport_url=transport_url, driver=driver)
    load_scenario(cloud, data)
    return cloud


def load_scenario(cloud: Cloud, source: str | Path | dict[str, Any]) -> dict[str, str]:
    """Create the scenario's resources in ``cloud`` without notifications.

    Returns a map of ``"<kind>:<name>"`` to the id created (e.g. ``"server:web-1"``).
    """
    data = read_scenario(source)
    ids: dict[str, str] = {}
    now = cloud.clock.now()
    idn = cloud.identity

    def project_id(name: str | None) -> str:
        return cloud.admin_project_id if name in (None, "admin") else idn.project(name).id

    def when(spec: dict[str, Any], at: str, age: str) -> datetime | None:
        if spec.get(at) is not None:
            return parse_time(spec[at])
        if spec.get(age) is not None:
            return now - parse_duration(spec[age])
        return None

    with cloud.quiet():
        for p in data.get("projects") or []:
            project = idn.create_project(
                p["name"],
                id=p.get("id"),
                enabled=p.get("enabled", True),
                description=p.get("description", ""),
                tags=p.get("tags"),
                properties=p.get("properties"),
            )
            ids[f"project:{project.name}"] = project.id
        for u in data.get("users") or []:
            user = idn.create_user(
                u["name"],
                id=u.get("id"),
                email=u.get("email"),
                password=u.get("password", "password"),
                enabled=u.get("enabled", True),
            )
            ids[f"user:{user.name}"] = user.id
            for pname, roles in (u.get("roles") or {}).items():
                for role in [roles] if isinstance(roles, str) else roles:
                    idn.grant(user.id, project_id(pname), role)
        for i in data.get("images") or []:
            owner = project_id(i.get("owner"))
            image = cloud.image.create_image(
                owner=owner,
                name=i["name"],
                id=i.get("id"),
                visibility=i.get("visibility", "private"),
                protected=i.get("protected", False),
                os_hidden=i.get("os_hidden", False),
                properties=i.get("properties"),
                tags=i.get("tags"),
                status="active",
                created_at=when(i, "created_at", "age"),
            )
            ids[f"image:{image.name}"] = image.id
            for m in i.get("members") or []:
                member = project_id(m["project"] if isinstance(m, dict) else m)
                cloud.image.add_member(None, image.id, member)
                status = m.get("status", "accepted") if isinstance(m, dict) else "accepted"
                if status != "pending":
                    cloud.image.set_member_status(None, image.id, member, status)
        admin = cloud.admin_ctx()
        external = next(n["id"] for n in cloud.network.networks.values() if n["router:external"])
        for n in data.get("networks") or []:
            net = cloud.network.create_network(
                admin,
                n["name"],
                project_id=project_id(n.get("project")),
                shared=n.get("shared", False),
                external=n.get("external", False),
                cidr=n.get("cidr", "10.0.0.0/24"),
            )
            ids[f"network:{n['name']}"] = net["id"]
        for r in data.get("routers") or []:
            router = cloud.network.create_router(
                admin,
                r["name"],
                project_id=project_id(r.get("project")),
                external_network_id=external if r.get("external", False) else None,
            )
            ids[f"router:{r['name']}"] = router["id"]
            for net_name in r.get("interfaces") or []:
                net_id = ids[f"network:{net_name}"]
                subnet = next(
                    s for s in cloud.network.tables["subnets"].values() if s["network_id"] == net_id
                )
                cloud.network.add_interface(admin, router["id"], subnet_id=subnet["id"])
        for g in data.get("security_groups") or []:
            sg = cloud.network.create_security_group(
                admin,
                g["name"],
                description=g.get("description", ""),
                project_id=project_id(g.get("project")),
            )
            ids[f"security_group:{g['name']}"] = sg["id"]
            for rule in g.get("rules") or []:
                cloud.network.create_security_group_rule(admin, sg["id"], **rule)
        for v in data.get("volumes") or []:
            pid = project_id(v.get("project"))
            vol = cloud.volume.create_volume(
                project_id=pid,
                user_id=_user_id(cloud, v.get("user")),
                name=v["name"],
                size=v.get("size", 1),
                bootable=v.get("bootable", False),
                id=v.get("id"),
            )
            ids[f"volume:{vol.name}"] = vol.id
        for s in data.get("servers") or []:
            pid = project_id(s.get("project"))
            image_ref = s.get("image")
            image_id = ids.get(f"image:{image_ref}", image_ref) if image_ref else None
            nets = s.get("networks") or ([s["network"]] if s.get("network") else [])
            server = cloud.compute.create_server(
                project_id=pid,
                user_id=_user_id(cloud, s.get("user"), pid),
                name=s["name"],
                id=s.get("id"),
                image_id=image_id,
                flavor=s.get("flavor", "m1.small"),
                state=s.get("state", "active"),
                metadata=s.get("metadata"),
                locked=s.get("locked", False),
                networks=[ids.get(f"network:{n}", n) for n in nets],
                volume_ids=[ids.get(f"volume:{v}", v) for v in s.get("volumes") or []],
                created_at=when(s, "created_at", "created_age"),
                updated_at=when(s, "updated_at", "age"),
            )
            ids[f"server:{server.name}"] = server.id
        for c in data.get("containers") or []:
            pid = project_id(c.get("project"))
            cloud.object_store.put_container(pid, c["name"])
            for oname, content in (c.get("objects") or {}).items():
                cloud.object_store.put_object(pid, c["name"], oname, str(content).encode())
    return ids


def _user_id(cloud: Cloud, name: str | None, project_id: str | None = None) -> str:
    """The named user, else the first user with a role on the project, else admin."""
    if name:
        return cloud.identity.user(name).id
    if project_id:
        for (uid, pid), roles in cloud.identity.assignments.items():
            if pid == project_id and roles:
                return uid
    return cloud.admin_user_id
