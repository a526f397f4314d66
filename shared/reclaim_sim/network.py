"""Simulated Neutron v2.0: networks, subnets, ports, routers, floating IPs, security groups.

Neutron's API is uniform, so resources are stored as the dicts the API returns, one table
per collection, and list filters are generic field matches as in Neutron.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from reclaim_sim.clock import iso_z
from reclaim_sim.core import Ctx, SimError, new_id
from reclaim_sim.notify import Notification
from reclaim_sim.wsgi import ServiceAPI, base_url, empty, json_response, read_json

if TYPE_CHECKING:
    from reclaim_sim.cloud import Cloud

Row = dict[str, Any]

#: collection (URL and table name) -> singular resource name (JSON key, notifications)
COLLECTIONS = {
    "networks": "network",
    "subnets": "subnet",
    "ports": "port",
    "routers": "router",
    "floatingips": "floatingip",
    "security-groups": "security_group",
    "security-group-rules": "security_group_rule",
}
_ROUTER_IF_OWNERS = frozenset(
    {
        "network:router_interface",
        "network:router_interface_distributed",
        "network:ha_router_replicated_interface",
    }
)
#: what Neutron's default policy shows to administrators only
_ADMIN_ONLY = frozenset(
    {
        "provider:network_type",
        "provider:physical_network",
        "provider:segmentation_id",
        "binding:host_id",
        "binding:vif_type",
        "binding:profile",
        "binding:vif_details",
    }
)
_PAGING = frozenset({"limit", "marker", "sort_key", "sort_dir", "fields", "page_reverse"})


def _neutron_error(kind: str, message: str, status: int = 409) -> SimError:
    return SimError(status, message, kind)


def _not_found(collection: str, rid: str) -> SimError:
    singular = COLLECTIONS[collection]
    kind = "".join(p.capitalize() for p in singular.split("_")) + "NotFound"
    return _neutron_error(
        kind, f"{singular.replace('_', ' ').capitalize()} {rid} could not be found.", 404
    )


def _mac() -> str:
    return "fa:16:3e:" + ":".join(f"{random.randint(0, 255):02x}" for _ in range(3))


def _matches(row: Row, key: str, wanted: list[str]) -> bool:
    value = row.get(key)
    if isinstance(value, bool):
        text = "true" if value else "false"
        return any(w.lower() == text for w in wanted)
    if isinstance(value, list):  # e.g. fixed_ips or tags: any element matching
        return any(str(v) in wanted for v in value)
    return ("" if value is None else str(value)) in wanted


class NetworkState:
    """Neutron's tables and rules."""

    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.tables: dict[str, dict[str, Row]] = {c: {} for c in COLLECTIONS}
        self._next_ip: dict[str, int] = {}
        self._used_ips: dict[str, set[str]] = {}
        self._vni = 0

    def _next_vni(self) -> int:
        """The next VXLAN id of a project network (Neutron's ``vni_ranges``)."""
        self._vni += 1
        return self._vni

    @property
    def networks(self) -> dict[str, Row]:
        return self.tables["networks"]

    @property
    def ports(self) -> dict[str, Row]:
        return self.tables["ports"]

    @property
    def routers(self) -> dict[str, Row]:
        return self.tables["routers"]

    # -- generic ---------------------------------------------------------------------------
    def _new(self, collection: str, project_id: str | None, **fields: Any) -> Row:
        now = iso_z(self.cloud.clock.now())
        row: Row = {
            "id": new_id(),
            "project_id": project_id,
            "tenant_id": project_id,
            "description": "",
            "tags": [],
            "created_at": now,
            "updated_at": now,
            "revision_number": 0,
        }
        row.update(fields)
        self.tables[collection][row["id"]] = row
        return row

    def _touch(self, row: Row) -> None:
        row["updated_at"] = iso_z(self.cloud.clock.now())
        row["revision_number"] = int(row.get("revision_number", 0)) + 1

    def visible(self, ctx: Ctx | None, collection: str, row: Row) -> bool:
        if ctx is None or ctx.is_admin or row.get("project_id") == ctx.project_id:
            return True
        if collection == "networks":
            return bool(row.get("shared") or row.get("router:external"))
        if collection == "subnets":
            net = self.networks.get(row["network_id"])
            return net is not None and bool(net.get("shared") or net.get("router:external"))
        return False

    def get(self, ctx: Ctx | None, collection: str, rid: str) -> Row:
        row = self.tables[collection].get(rid)
        if row is None or not self.visible(ctx, collection, row):
            raise _not_found(collection, rid)
        return row

    def query(self, ctx: Ctx | None, collection: str, args: dict[str, list[str]]) -> list[Row]:
        """Neutron's list: visible rows matching every ``field=value`` filter."""
        filters = {k: v for k, v in args.items() if k not in _PAGING}
        if "tenant_id" in filters and "project_id" not in filters:
            filters["project_id"] = filters.pop("tenant_id")
        out = []
        for row in self.tables[collection].values():
            if not self.visible(ctx, collection, row):
                continue
            if collection == "ports" and "fixed_ips" in filters:
                # fixed_ips=subnet_id=X / ip_address=Y
                wanted = filters["fixed_ips"]
                if not any(f"{k}={ip[k]}" in wanted for ip in row["fixed_ips"] for k in ip):
                    continue
                if not all(_matches(row, k, v) for k, v in filters.items() if k != "fixed_ips"):
                    continue
            elif not all(_matches(row, k, v) for k, v in filters.items()):
                continue
            out.append(row)
        return out

    def _notify(self, event_type: str, payload: dict[str, Any], ctx: Ctx | None) -> None:
        cloud = self.cloud
        if not cloud.notifying:
            return
        cloud.notify(
            Notification(
                exchange="neutron",
                topic="notifications",
                publisher_id="network.sim-network",
                event_type=event_type,
                payload=payload,
                timestamp=cloud.clock.now(),
                context=ctx.oslo_context() if ctx else {},
            )
        )

    def _created(self, singular: str, row: Row, ctx: Ctx | None) -> Row:
        self._notify(f"{singular}.create.end", {singular: self.render(singular, row)}, ctx)
        return row

    def _deleted(self, collection: str, row: Row, ctx: Ctx | None) -> None:
        singular = COLLECTIONS[collection]
        if collection == "ports":
            self._drop_port(row["id"])
        else:
            del self.tables[collection][row["id"]]
        self._notify(f"{singular}.delete.end", {f"{singular}_id": row["id"]}, ctx)

    def render(self, singular: str, row: Row, ctx: Ctx | None = None) -> Row:
        """A row as Neutron shows it to ``ctx`` (None: an administrator): the provider and
        binding details are the administrators' (Neutron's default policy)."""
        if ctx is not None and not ctx.is_admin and singular in ("network", "port"):
            row = {k: v for k, v in row.items() if k not in _ADMIN_ONLY}
        if singular == "security_group_rule":  # a rule alone shows no tags
            return {k: v for k, v in row.items() if k != "tags"}
        if singular == "subnet":
            net = self.networks.get(row["network_id"]) or {}
            return dict(row, **{"router:external": bool(net.get("router:external"))})
        if singular == "security_group":
            rules = [
                r
                for r in self.tables["security-group-rules"].values()
                if r["security_group_id"] == row["id"]
            ]
            return dict(row, security_group_rules=[dict(r) for r in rules])
        if singular == "network":
            subnets = [
                s["id"] for s in self.tables["subnets"].values() if s["network_id"] == row["id"]
            ]
            return dict(row, subnets=subnets)
        return dict(row)

    # -- networks and subnets --------------------------------------------------------------
    def create_network(
        self,
        ctx: Ctx,
        name: str,
        *,
        project_id: str | None = None,
        shared: bool = False,
        external: bool = False,
        cidr: str | None = None,
    ) -> Row:
        """Create a network (and, with ``cidr``, one subnet on it)."""
        with self.cloud.transaction():
            net = self._new(
                "networks",
                project_id or ctx.project_id,
                name=name,
                admin_state_up=True,
                status="ACTIVE",
                shared=shared,
                mtu=1500,
                port_security_enabled=True,
                availability_zones=["nova"],
                availability_zone_hints=[],
                ipv4_address_scope=None,
                ipv6_address_scope=None,
                qinq=False,
                vlan_transparent=False,
                **{
                    "router:external": external,
                    "provider:network_type": "vxlan" if not external else "flat",
                    "provider:physical_network": "public" if external else None,
                    "provider:segmentation_id": None if external else self._next_vni(),
                },
            )
            self._created("network", net, ctx)
            if cidr:
                self.create_subnet(
                    ctx, net["id"], cidr, name=f"{name}-subnet", project_id=net["project_id"]
                )
            return net

    def create_subnet(
        self,
        ctx: Ctx,
        network_id: str,
        cidr: str,
        *,
        name: str = "",
        project_id: str | None = None,
        gateway_ip: str | None = None,
        ip_version: int | None = None,
        enable_dhcp: bool = True,
    ) -> Row:
        with self.cloud.transaction():
            net = self.get(ctx, "networks", network_id)
            if not ctx.is_admin and net["project_id"] != ctx.project_id:
                raise _neutron_error(
                    "PolicyNotAuthorized", "Not authorized to add a subnet to this network.", 403
                )
            block = ipaddress.ip_network(cidr, strict=False)
            hosts = block.hosts()
            gateway = gateway_ip or str(next(hosts))
            sub = self._new(
                "subnets",
                project_id or net["project_id"],
                name=name,
                network_id=net["id"],
                cidr=str(block),
                ip_version=ip_version or block.version,
                gateway_ip=gateway,
                enable_dhcp=enable_dhcp,
                dns_nameservers=[],
                host_routes=[],
                allocation_pools=[{"start": str(block[2]), "end": str(block[-2])}],
                ipv6_ra_mode=None,
                ipv6_address_mode=None,
                subnetpool_id=None,
                service_types=[],
            )
            self._next_ip[sub["id"]] = 2
            self._touch(net)
            return self._created("subnet", sub, ctx)

    def _allocate_ip(self, subnet: Row) -> str:
        """The next free address of the subnet (the caller's port takes it)."""
        block = ipaddress.ip_network(subnet["cidr"])
        used = self._used_ips.setdefault(subnet["id"], set())
        n = self._next_ip.get(subnet["id"], 2)
        while str(block[n]) in used or str(block[n]) == subnet["gateway_ip"]:
            n += 1
        self._next_ip[subnet["id"]] = n + 1
        return str(block[n])

    def _drop_port(self, port_id: str) -> Row | None:
        """Remove a port from the table and free its addresses (no notification)."""
        port = self.ports.pop(port_id, None)
        if port is not None:
            for ip in port["fixed_ips"]:
                self._used_ips.get(ip["subnet_id"], set()).discard(ip["ip_address"])
        return port

    def delete_network(self, ctx: Ctx, network_id: str) -> None:
        with self.cloud.transaction():
            net = self._owned(ctx, "networks", network_id)
            in_use = [
                p
                for p in self.ports.values()
                if p["network_id"] == net["id"] and p["device_owner"] != "network:dhcp"
            ]
            if in_use:
                raise _neutron_error(
                    "NetworkInUse",
                    f"Unable to complete operation on network {net['id']}. "
                    "There are one or more ports still in use on the network.",
                )
            for port in [p for p in self.ports.values() if p["network_id"] == net["id"]]:
                self._drop_port(port["id"])
            for sub in [s for s in self.tables["subnets"].values() if s["network_id"] == net["id"]]:
                self._deleted("subnets", sub, ctx)
            self._deleted("networks", net, ctx)

    def delete_subnet(self, ctx: Ctx, subnet_id: str) -> None:
        with self.cloud.transaction():
            sub = self._owned(ctx, "subnets", subnet_id)
            if any(
                ip["subnet_id"] == sub["id"]
                for p in self.ports.values()
                for ip in p["fixed_ips"]
                if p["device_owner"] != "network:dhcp"
            ):
                raise _neutron_error(
                    "SubnetInUse",
                    f"Unable to complete operation on subnet {sub['id']}: "
                    "One or more ports have an IP allocation from this subnet.",
                )
            self._deleted("subnets", sub, ctx)

    def _owned(self, ctx: Ctx, collection: str, rid: str) -> Row:
        row = self.get(ctx, collection, rid)
        if not ctx.is_admin and row.get("project_id") != ctx.project_id:
            # visible (shared) but not ours: Neutron answers as if it did not exist
            raise _not_found(collection, rid)
        return row

    # -- ports -----------------------------------------------------------------------------
    def create_port(
        self,
        ctx: Ctx,
        *,
        network_id: str,
        project_id: str | None = None,
        device_owner: str = "",
        device_id: str = "",
        name: str = "",
        subnet_id: str | None = None,
        ip_address: str | None = None,
        security_groups: list[str] | None = None,
        notify: bool = True,
    ) -> Row:
        with self.cloud.transaction():
            net = self.get(ctx, "networks", network_id)
            fixed_ips = []
            subnets = [
                s
                for s in self.tables["subnets"].values()
                if s["network_id"] == net["id"] and (subnet_id is None or s["id"] == subnet_id)
            ]
            if subnets:
                sub = subnets[0]
                address = ip_address or self._allocate_ip(sub)
                fixed_ips.append({"subnet_id": sub["id"], "ip_address": address})
                self._used_ips.setdefault(sub["id"], set()).add(address)
            # "" is a real owner: Neutron gives gateway and floating IP ports no project
            owner = ctx.project_id if project_id is None else project_id
            # a port gets the project's default group, but the network's own ports none
            if security_groups is None and not device_owner.startswith("network:"):
                default = self.ensure_default_security_group(owner) if owner else None
                security_groups = [default["id"]] if default else []
            port = self._new(
                "ports",
                owner,
                name=name,
                network_id=net["id"],
                mac_address=_mac(),
                fixed_ips=fixed_ips,
                device_id=device_id,
                device_owner=device_owner,
                status="ACTIVE" if device_owner else "DOWN",
                admin_state_up=True,
                security_groups=security_groups or [],
                allowed_address_pairs=[],
                extra_dhcp_opts=[],
                port_security_enabled=True,
                **{
                    "binding:vnic_type": "normal",
                    "binding:host_id": "",
                    "binding:vif_type": "ovs" if device_owner else "unbound",
                    "binding:profile": {},
                    "binding:vif_details": {},
                },
            )
            if notify:
                self._created("port", port, ctx)
            return port

    def delete_port(self, ctx: Ctx, port_id: str) -> None:
        with self.cloud.transaction():
            port = self._owned(ctx, "ports", port_id)
            if (
                port["device_owner"] in _ROUTER_IF_OWNERS
                or port["device_owner"] == "network:router_gateway"
            ):
                raise _neutron_error(
                    "L3PortInUse",
                    f"Port {port['id']} cannot be deleted directly via the port "
                    f"API: has device owner {port['device_owner']}.",
                )
            self._detach_floating_ips(port["id"])
            self._deleted("ports", port, ctx)

    def delete_port_quietly(self, port_id: str) -> None:
        """Nova unbinding and deleting a server's port."""
        if self._drop_port(port_id) is not None:
            self._detach_floating_ips(port_id)

    def _detach_floating_ips(self, port_id: str) -> None:
        for fip in self.tables["floatingips"].values():
            if fip["port_id"] == port_id:
                fip.update(
                    port_id=None,
                    fixed_ip_address=None,
                    router_id=None,
                    status="DOWN",
                    port_details=None,
                )

    # -- routers ---------------------------------------------------------------------------
    def create_router(
        self,
        ctx: Ctx,
        name: str,
        *,
        project_id: str | None = None,
        external_network_id: str | None = None,
    ) -> Row:
        with self.cloud.transaction():
            router = self._new(
                "routers",
                project_id or ctx.project_id,
                name=name,
                status="ACTIVE",
                admin_state_up=True,
                external_gateway_info=None,
                routes=[],
                distributed=False,
                ha=False,
                flavor_id=None,
                availability_zones=["nova"],
                availability_zone_hints=[],
            )
            if external_network_id:
                self._set_gateway(ctx, router, {"network_id": external_network_id})
            return self._created("router", router, ctx)

    def _set_gateway(self, ctx: Ctx, router: Row, info: dict[str, Any] | None) -> None:
        for port in [
            p
            for p in self.ports.values()
            if p["device_id"] == router["id"] and p["device_owner"] == "network:router_gateway"
        ]:
            self._drop_port(port["id"])
        if not info or not info.get("network_id"):
            router["external_gateway_info"] = None
            return
        net = self.get(ctx, "networks", info["network_id"])
        if not net.get("router:external"):
            raise _neutron_error(
                "BadRequest", f"Network {net['id']} is not an external network", 400
            )
        port = self.create_port(
            ctx,
            network_id=net["id"],
            project_id="",
            device_owner="network:router_gateway",
            device_id=router["id"],
            notify=False,
        )
        router["external_gateway_info"] = {
            "network_id": net["id"],
            "enable_snat": True,
            "external_fixed_ips": [dict(ip) for ip in port["fixed_ips"]],
        }

    def update_router(self, ctx: Ctx, router_id: str, changes: dict[str, Any]) -> Row:
        with self.cloud.transaction():
            router = self._owned(ctx, "routers", router_id)
            for key, value in changes.items():
                if key == "external_gateway_info":
                    self._set_gateway(ctx, router, value)
                elif key in ("name", "description", "admin_state_up", "routes"):
                    router[key] = value
            self._touch(router)
            self._notify("router.update.end", {"router": self.render("router", router)}, ctx)
            return router

    def add_interface(
        self, ctx: Ctx, router_id: str, *, subnet_id: str | None = None, port_id: str | None = None
    ) -> Row:
        with self.cloud.transaction():
            router = self._owned(ctx, "routers", router_id)
            if port_id:
                port = self._owned(ctx, "ports", port_id)
                if port["device_id"]:
                    raise _neutron_error("PortInUse", f"Port {port_id} is in use.")
                port.update(
                    device_owner="network:router_interface", device_id=router["id"], status="ACTIVE"
                )
            elif subnet_id:
                sub = self.get(ctx, "subnets", subnet_id)
                if any(
                    p["device_id"] == router["id"] and ip["subnet_id"] == sub["id"]
                    for p in self.ports.values()
                    for ip in p["fixed_ips"]
                ):
                    raise _neutron_error(
                        "BadRequest", f"Router already has a port on subnet {sub['id']}.", 400
                    )
                port = self.create_port(
                    ctx,
                    network_id=sub["network_id"],
                    project_id=router["project_id"],
                    device_owner="network:router_interface",
                    device_id=router["id"],
                    subnet_id=sub["id"],
                    ip_address=sub["gateway_ip"],
                    notify=False,
                )
            else:
                raise _neutron_error(
                    "BadRequest", "Either subnet_id or port_id must be specified", 400
                )
            self._touch(router)
            info = self._interface_info(router, port)
            self._notify("router.interface.create", {"router_interface": info}, ctx)
            return info

    def remove_interface(
        self, ctx: Ctx, router_id: str, *, subnet_id: str | None = None, port_id: str | None = None
    ) -> Row:
        with self.cloud.transaction():
            router = self._owned(ctx, "routers", router_id)
            ports = [
                p
                for p in self.ports.values()
                if p["device_id"] == router["id"]
                and p["device_owner"] in _ROUTER_IF_OWNERS
                and (port_id is None or p["id"] == port_id)
                and (
                    subnet_id is None or any(ip["subnet_id"] == subnet_id for ip in p["fixed_ips"])
                )
            ]
            if not ports:
                raise _neutron_error(
                    "RouterInterfaceNotFound" if port_id else "RouterInterfaceNotFoundForSubnet",
                    f"Router {router['id']} does not have an interface with id "
                    f"{port_id or subnet_id}",
                    404,
                )
            port = ports[0]
            subnets = {ip["subnet_id"] for ip in port["fixed_ips"]}
            for fip in self.tables["floatingips"].values():
                fixed = self.ports.get(fip["port_id"] or "")
                if fip["router_id"] == router["id"] and fixed is not None:
                    used = subnets & {ip["subnet_id"] for ip in fixed["fixed_ips"]}
                    if used:
                        raise _neutron_error(
                            "RouterInterfaceInUseByFloatingIP",
                            f"Router interface for subnet {sorted(used)[0]} on router "
                            f"{router['id']} cannot be deleted, as it is required by one or "
                            "more floating IPs.",
                        )
            if router.get("routes"):
                raise _neutron_error(
                    "RouterInterfaceInUseByRoute",
                    f"Router interface for "
                    f"subnet on router {router['id']} cannot be deleted, as it "
                    "is required by one or more routes.",
                )
            self._drop_port(port["id"])
            self._touch(router)
            info = self._interface_info(router, port)
            self._notify("router.interface.delete", {"router_interface": info}, ctx)
            return info

    @staticmethod
    def _interface_info(router: Row, port: Row) -> Row:
        subnets = [ip["subnet_id"] for ip in port["fixed_ips"]]
        return {
            "id": router["id"],
            "project_id": router["project_id"],
            "port_id": port["id"],
            "network_id": port["network_id"],
            "subnet_id": subnets[0] if subnets else None,
            "subnet_ids": subnets,
        }

    def delete_router(self, ctx: Ctx, router_id: str) -> None:
        with self.cloud.transaction():
            router = self._owned(ctx, "routers", router_id)
            if any(
                p["device_id"] == router["id"] and p["device_owner"] in _ROUTER_IF_OWNERS
                for p in self.ports.values()
            ):
                raise _neutron_error("RouterInUse", f"Router {router['id']} still has ports")
            self._set_gateway(ctx, router, None)
            for fip in self.tables["floatingips"].values():
                if fip["router_id"] == router["id"]:
                    fip.update(router_id=None, port_id=None, fixed_ip_address=None)
            self._deleted("routers", router, ctx)

    # -- floating IPs ----------------------------------------------------------------------
    def create_floating_ip(
        self,
        ctx: Ctx,
        network_id: str,
        *,
        project_id: str | None = None,
        port_id: str | None = None,
    ) -> Row:
        with self.cloud.transaction():
            net = self.get(ctx, "networks", network_id)
            if not net.get("router:external"):
                raise _neutron_error(
                    "BadRequest", f"Network {net['id']} is not a valid external network", 400
                )
            subnets = [s for s in self.tables["subnets"].values() if s["network_id"] == net["id"]]
            address = self._allocate_ip(subnets[0]) if subnets else "0.0.0.0"
            # the address is taken by a hidden port, as Neutron's floatingip port
            gw = (
                self.create_port(
                    ctx,
                    network_id=net["id"],
                    project_id="",
                    device_owner="network:floatingip",
                    ip_address=address,
                    notify=False,
                )
                if subnets
                else None
            )
            fip = self._new(
                "floatingips",
                project_id or ctx.project_id,
                floating_ip_address=address,
                floating_network_id=net["id"],
                port_id=None,
                fixed_ip_address=None,
                router_id=None,
                status="DOWN",
                port_details=None,
            )
            if gw is not None:
                gw["device_id"] = fip["id"]
            if port_id:
                self._associate(ctx, fip, port_id)
            return self._created("floatingip", fip, ctx)

    def _associate(self, ctx: Ctx, fip: Row, port_id: str | None) -> None:
        """Bind the floating IP to a port through the router that joins the port's subnet to
        the floating IP's network (its ``router_id``); none: 404, as Neutron answers."""
        if port_id is None:
            fip.update(
                port_id=None,
                fixed_ip_address=None,
                router_id=None,
                status="DOWN",
                port_details=None,
            )
            return
        port = self._owned(ctx, "ports", port_id)
        if not port["fixed_ips"]:
            raise _neutron_error(
                "BadRequest",
                f"Bad floatingip request: Port {port['id']} does not have any IP addresses "
                "configured.",
                400,
            )
        subnet = port["fixed_ips"][0]["subnet_id"]
        router = self._router_between(subnet, fip["floating_network_id"])
        if router is None:
            raise _neutron_error(
                "ExternalGatewayForFloatingIPNotFound",
                f"External network {fip['floating_network_id']} is not reachable from subnet "
                f"{subnet}.  Therefore, cannot associate Port {port['id']} with a Floating IP.",
                404,
            )
        fip.update(
            port_id=port["id"],
            status="ACTIVE",
            fixed_ip_address=port["fixed_ips"][0]["ip_address"],
            router_id=router["id"],
            port_details={
                k: port[k]
                for k in (
                    "name",
                    "network_id",
                    "mac_address",
                    "admin_state_up",
                    "status",
                    "device_id",
                    "device_owner",
                )
            },
        )

    def _router_between(self, subnet_id: str, external_network_id: str) -> Row | None:
        """A router with an interface on ``subnet_id`` and its gateway on the network."""
        for router in self.routers.values():
            gateway = router.get("external_gateway_info") or {}
            if gateway.get("network_id") != external_network_id:
                continue
            if any(
                p["device_id"] == router["id"]
                and p["device_owner"] in _ROUTER_IF_OWNERS
                and any(ip["subnet_id"] == subnet_id for ip in p["fixed_ips"])
                for p in self.ports.values()
            ):
                return router
        return None

    def update_floating_ip(self, ctx: Ctx, fip_id: str, changes: dict[str, Any]) -> Row:
        with self.cloud.transaction():
            fip = self._owned(ctx, "floatingips", fip_id)
            if "port_id" in changes:
                self._associate(ctx, fip, changes["port_id"])
            if "description" in changes:
                fip["description"] = changes["description"]
            self._touch(fip)
            return fip

    def delete_floating_ip(self, ctx: Ctx, fip_id: str) -> None:
        with self.cloud.transaction():
            fip = self._owned(ctx, "floatingips", fip_id)
            for port in [
                p
                for p in self.ports.values()
                if p["device_id"] == fip["id"] and p["device_owner"] == "network:floatingip"
            ]:
                self._drop_port(port["id"])
            self._deleted("floatingips", fip, ctx)

    # -- security groups -------------------------------------------------------------------
    def ensure_default_security_group(self, project_id: str) -> Row:
        """The project's ``default`` group, made (without notification) when first needed."""
        with self.cloud.transaction():
            for sg in self.tables["security-groups"].values():
                if sg["project_id"] == project_id and sg["name"] == "default":
                    return sg
            sg = self._new(
                "security-groups",
                project_id,
                name="default",
                description="Default security group",
                stateful=True,
                shared=False,
            )
            for ethertype in ("IPv4", "IPv6"):
                self._rule_row(sg, "ingress", ethertype, remote_group_id=sg["id"])
                self._rule_row(sg, "egress", ethertype)
            return sg

    def _rule_row(self, sg: Row, direction: str, ethertype: str, **fields: Any) -> Row:
        values: dict[str, Any] = {
            "security_group_id": sg["id"],
            "direction": direction,
            "ethertype": ethertype,
            "protocol": None,
            "port_range_min": None,
            "port_range_max": None,
            "remote_ip_prefix": None,
            "remote_group_id": None,
            "remote_address_group_id": None,
            "normalized_cidr": None,
            "belongs_to_default_sg": sg["name"] == "default",
        }
        values.update(fields)
        if values["remote_ip_prefix"]:
            values["normalized_cidr"] = str(
                ipaddress.ip_network(values["remote_ip_prefix"], strict=False)
            )
        return self._new("security-group-rules", sg["project_id"], **values)

    def create_security_group(
        self, ctx: Ctx, name: str, *, description: str = "", project_id: str | None = None
    ) -> Row:
        with self.cloud.transaction():
            # "" is a real owner: Neutron gives gateway and floating IP ports no project
            owner = ctx.project_id if project_id is None else project_id
            if owner:
                self.ensure_default_security_group(owner)
            sg = self._new(
                "security-groups",
                owner,
                name=name,
                description=description,
                stateful=True,
                shared=False,
            )
            for ethertype in ("IPv4", "IPv6"):
                self._rule_row(sg, "egress", ethertype)
            return self._created("security_group", sg, ctx)

    def delete_security_group(self, ctx: Ctx, sg_id: str) -> None:
        with self.cloud.transaction():
            sg = self._owned(ctx, "security-groups", sg_id)
            # Neutron looks for ports using the group first
            if any(sg["id"] in p["security_groups"] for p in self.ports.values()):
                raise _neutron_error("SecurityGroupInUse", f"Security Group {sg['id']} in use.")
            if sg["name"] == "default" and not ctx.is_admin:
                raise _neutron_error(
                    "SecurityGroupCannotRemoveDefault",
                    "Insufficient rights for removing default security group.",
                )
            for rule in [
                r
                for r in self.tables["security-group-rules"].values()
                if r["security_group_id"] == sg["id"]
            ]:
                del self.tables["security-group-rules"][rule["id"]]
            self._deleted("security-groups", sg, ctx)

    def create_security_group_rule(self, ctx: Ctx, security_group_id: str, **fields: Any) -> Row:
        with self.cloud.transaction():
            sg = self._owned(ctx, "security-groups", security_group_id)
            direction = fields.pop("direction", "ingress")
            ethertype = fields.pop("ethertype", "IPv4")
            if direction not in ("ingress", "egress"):
                raise _neutron_error("BadRequest", f"Invalid direction {direction}", 400)
            allowed = {
                "protocol",
                "port_range_min",
                "port_range_max",
                "remote_ip_prefix",
                "remote_group_id",
                "description",
            }
            given = {k: v for k, v in fields.items() if k in allowed}
            same = _rule_key(direction, ethertype, given)
            for other in self.tables["security-group-rules"].values():
                if (
                    other["security_group_id"] == sg["id"]
                    and _rule_key(other["direction"], other["ethertype"], other) == same
                ):
                    raise _neutron_error(
                        "SecurityGroupRuleExists",
                        f"Security group rule already exists. Rule id is {other['id']}.",
                    )
            rule = self._rule_row(sg, direction, ethertype, **given)
            self._touch(sg)
            return self._created("security_group_rule", rule, ctx)

    def delete_security_group_rule(self, ctx: Ctx, rule_id: str) -> None:
        with self.cloud.transaction():
            rule = self._owned(ctx, "security-group-rules", rule_id)
            self._deleted("security-group-rules", rule, ctx)


#: IP protocol names Neutron accepts for a rule, and their numbers
_PROTOCOLS = {"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "gre": 47, "icmpv6": 58, "ipv6-icmp": 58}


def _rule_key(direction: str, ethertype: str, fields: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two rules the same for Neutron: protocols by number, an address prefix
    normalised (the whole address space counts as none), the description ignored."""
    protocol = fields.get("protocol")
    if protocol is not None and str(protocol).lower() in _PROTOCOLS:
        protocol = _PROTOCOLS[str(protocol).lower()]
    prefix = fields.get("remote_ip_prefix")
    if prefix:
        prefix = str(ipaddress.ip_network(prefix, strict=False))
        if prefix in ("0.0.0.0/0", "::/0"):
            prefix = None

    def number(value: Any) -> int | None:
        return None if value is None else int(value)

    return (
        direction,
        ethertype,
        None if protocol is None else str(protocol),
        number(fields.get("port_range_min")),
        number(fields.get("port_range_max")),
        prefix or None,
        fields.get("remote_group_id"),
        fields.get("remote_address_group_id"),
    )


def _versions(base: str) -> dict[str, Any]:
    return {
        "versions": [
            {
                "id": "v2.0",
                "status": "CURRENT",
                "links": [{"rel": "self", "href": f"{base}/network/v2.0/"}],
            }
        ]
    }


_EXTENSIONS = (
    "router",
    "external-net",
    "security-group",
    "extraroute",
    "standard-attr-tag",
    "project-id",
    "standard-attr-timestamp",
    "standard-attr-revisions",
    "standard-attr-description",
    "port-security",
    "binding",
    "quotas",
)


class NetworkAPI(ServiceAPI):
    name = "network"
    prefix = "/network"
    public_endpoints = frozenset({"versions"})

    @property
    def state(self) -> NetworkState:
        return self.cloud.network

    def rules(self) -> list[Rule]:
        v = "/v2.0"
        rules = [
            Rule("/", endpoint="versions", methods=["GET"]),
            Rule(v, endpoint="versions", methods=["GET"]),
            Rule(f"{v}/extensions", endpoint="extensions", methods=["GET"]),
            Rule(f"{v}/service-providers", endpoint="service_providers", methods=["GET"]),
            Rule(
                f"{v}/routers/<rid>/add_router_interface", endpoint="add_interface", methods=["PUT"]
            ),
            Rule(
                f"{v}/routers/<rid>/remove_router_interface",
                endpoint="remove_interface",
                methods=["PUT"],
            ),
            Rule(f"{v}/routers/<rid>/add_extraroutes", endpoint="add_extraroutes", methods=["PUT"]),
            Rule(
                f"{v}/routers/<rid>/remove_extraroutes",
                endpoint="remove_extraroutes",
                methods=["PUT"],
            ),
        ]
        # the same five calls on every collection: list, create, show, update, delete
        calls = (
            ("", "list_rows", "GET"),
            ("", "create_row", "POST"),
            ("/<rid>", "get_row", "GET"),
            ("/<rid>", "update_row", "PUT"),
            ("/<rid>", "delete_row", "DELETE"),
        )
        for collection in COLLECTIONS:
            rules += [
                Rule(
                    f"{v}/{collection}{tail}",
                    endpoint=endpoint,
                    methods=[method],
                    defaults={"collection": collection},
                )
                for tail, endpoint, method in calls
            ]
        return rules

    def error(self, err: SimError) -> Response:
        return json_response(
            {
                "NeutronError": {
                    "type": err.kind or "NeutronError",
                    "message": err.message,
                    "detail": "",
                }
            },
            err.status,
        )

    def versions(self, request: Request, ctx: Ctx | None) -> Response:
        return json_response(_versions(base_url(request)))

    def extensions(self, request: Request, ctx: Ctx | None) -> Response:
        return json_response(
            {
                "extensions": [
                    {
                        "alias": a,
                        "name": a,
                        "description": a,
                        "updated": "2013-01-01T00:00:00-00:00",
                        "links": [],
                    }
                    for a in _EXTENSIONS
                ]
            }
        )

    def service_providers(self, request: Request, ctx: Ctx | None) -> Response:
        return json_response({"service_providers": []})

    # -- generic collection handlers -------------------------------------------------------
    def list_rows(self, request: Request, ctx: Ctx | None, collection: str) -> Response:
        singular = COLLECTIONS[collection]
        args = {k: request.args.getlist(k) for k in request.args}
        limit = int(args["limit"][0]) if "limit" in args else None
        marker = args.get("marker", [None])[0]
        fields = args.get("fields")
        key = collection.replace("-", "_")
        with self.cloud.lock:
            rows = self.state.query(ctx, collection, args)
            if marker:
                idx = next((i for i, r in enumerate(rows) if r["id"] == marker), None)
                rows = rows[idx + 1 :] if idx is not None else []
            page = rows if limit is None else rows[:limit]
            items = [self.state.render(singular, r, ctx) for r in page]
        if fields:
            items = [{k: v for k, v in item.items() if k in fields} for item in items]
        body: dict[str, Any] = {key: items}
        if limit is not None and len(rows) > limit and page:
            body[f"{key}_links"] = [
                {
                    "rel": "next",
                    "href": (
                        f"{base_url(request)}/network/v2.0/{collection}?limit={limit}"
                        f"&marker={page[-1]['id']}"
                    ),
                }
            ]
        return json_response(body)

    def get_row(self, request: Request, ctx: Ctx | None, collection: str, rid: str) -> Response:
        singular = COLLECTIONS[collection]
        with self.cloud.lock:
            row = self.state.get(ctx, collection, rid)
            return json_response({singular: self.state.render(singular, row, ctx)})

    def create_row(self, request: Request, ctx: Ctx | None, collection: str) -> Response:
        assert ctx is not None
        singular = COLLECTIONS[collection]
        spec = dict(read_json(request).get(singular) or {})
        project = spec.get("project_id") or spec.get("tenant_id")
        if project and project != ctx.project_id and not ctx.is_admin:
            raise _neutron_error("PolicyNotAuthorized", "Not authorized.", 403)
        state = self.state
        creators: dict[str, Callable[[], Row]] = {
            "networks": lambda: state.create_network(
                ctx,
                spec.get("name", ""),
                project_id=project,
                shared=bool(spec.get("shared")),
                external=bool(spec.get("router:external")),
            ),
            "subnets": lambda: state.create_subnet(
                ctx,
                spec["network_id"],
                spec["cidr"],
                name=spec.get("name", ""),
                project_id=project,
                gateway_ip=spec.get("gateway_ip"),
                ip_version=spec.get("ip_version"),
                enable_dhcp=spec.get("enable_dhcp", True),
            ),
            "ports": lambda: state.create_port(
                ctx,
                network_id=spec["network_id"],
                project_id=project,
                device_owner=spec.get("device_owner", ""),
                device_id=spec.get("device_id", ""),
                name=spec.get("name", ""),
                security_groups=spec.get("security_groups"),
            ),
            "routers": lambda: state.create_router(
                ctx,
                spec.get("name", ""),
                project_id=project,
                external_network_id=(spec.get("external_gateway_info") or {}).get("network_id"),
            ),
            "floatingips": lambda: state.create_floating_ip(
                ctx, spec["floating_network_id"], project_id=project, port_id=spec.get("port_id")
            ),
            "security-groups": lambda: state.create_security_group(
                ctx,
                spec.get("name", ""),
                description=spec.get("description", ""),
                project_id=project,
            ),
            "security-group-rules": lambda: state.create_security_group_rule(
                ctx, spec.pop("security_group_id"), **spec
            ),
        }
        try:
            row = creators[collection]()
        except KeyError as exc:
            raise _neutron_error("BadRequest", f"Missing attribute {exc}", 400) from exc
        with self.cloud.lock:
            return json_response({singular: state.render(singular, row, ctx)}, 201)

    def update_row(self, request: Request, ctx: Ctx | None, collection: str, rid: str) -> Response:
        assert ctx is not None
        singular = COLLECTIONS[collection]
        spec = dict(read_json(request).get(singular) or {})
        state = self.state
        if collection == "routers":
            row = state.update_router(ctx, rid, spec)
        elif collection == "floatingips":
            row = state.update_floating_ip(ctx, rid, spec)
        else:
            with self.cloud.transaction():
                row = state._owned(ctx, collection, rid)
                for key in ("name", "description", "admin_state_up", "tags"):
                    if key in spec:
                        row[key] = spec[key]
                if collection == "ports" and "security_groups" in spec:
                    groups = [str(g) for g in spec["security_groups"] or []]
                    for group in groups:
                        state.get(ctx, "security-groups", group)  # 404 for an unknown one
                    row["security_groups"] = groups
                state._touch(row)
                state._notify(
                    f"{singular}.update.end", {singular: state.render(singular, row)}, ctx
                )
        with self.cloud.lock:
            return json_response({singular: state.render(singular, row, ctx)})

    def delete_row(self, request: Request, ctx: Ctx | None, collection: str, rid: str) -> Response:
        assert ctx is not None
        state = self.state
        deleters: dict[str, Callable[[Ctx, str], None]] = {
            "networks": state.delete_network,
            "subnets": state.delete_subnet,
            "ports": state.delete_port,
            "routers": state.delete_router,
            "floatingips": state.delete_floating_ip,
            "security-groups": state.delete_security_group,
            "security-group-rules": state.delete_security_group_rule,
        }
        deleters[collection](ctx, rid)
        return empty(204)

    # -- router interfaces -----------------------------------------------------------------
    def add_interface(self, request: Request, ctx: Ctx | None, rid: str) -> Response:
        assert ctx is not None
        spec = read_json(request)
        info = self.state.add_interface(
            ctx, rid, subnet_id=spec.get("subnet_id"), port_id=spec.get("port_id")
        )
        return json_response(info)

    def remove_interface(self, request: Request, ctx: Ctx | None, rid: str) -> Response:
        assert ctx is not None
        spec = read_json(request)
        info = self.state.remove_interface(
            ctx, rid, subnet_id=spec.get("subnet_id"), port_id=spec.get("port_id")
        )
        return json_response(info)

    def add_extraroutes(self, request: Request, ctx: Ctx | None, rid: str) -> Response:
        assert ctx is not None
        routes = (read_json(request).get("router") or {}).get("routes") or []
        with self.cloud.transaction():
            router = self.state._owned(ctx, "routers", rid)
            merged = list(router["routes"]) + [r for r in routes if r not in router["routes"]]
        row = self.state.update_router(ctx, rid, {"routes": merged})
        return json_response({"router": self.state.render("router", row)})

    def remove_extraroutes(self, request: Request, ctx: Ctx | None, rid: str) -> Response:
        assert ctx is not None
        routes = (read_json(request).get("router") or {}).get("routes") or []
        with self.cloud.transaction():
            router = self.state._owned(ctx, "routers", rid)
            kept = [r for r in router["routes"] if r not in routes]
        row = self.state.update_router(ctx, rid, {"routes": kept})
        return json_response({"router": self.state.render("router", row)})
