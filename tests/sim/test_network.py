"""Neutron v2.0 through openstacksdk: project filters, routers, interfaces, floating IPs,
security groups and their notifications."""

from __future__ import annotations

from typing import Any

import pytest
from openstack import exceptions

from reclaim_sim import Cloud, RecordingSink
from tests.sim.conftest import Tenant


def _public(conn: Any) -> Any:
    return next(n for n in conn.network.networks(is_router_external=True))


def test_network_router_interface_round_trip(tenant: Tenant) -> None:
    net = tenant.conn.network
    network = net.create_network(name="lab")
    subnet = net.create_subnet(network_id=network.id, cidr="10.1.0.0/24", ip_version=4)
    router = net.create_router(
        name="lab-router", external_gateway_info={"network_id": _public(tenant.conn).id}
    )
    net.add_interface_to_router(router, subnet_id=subnet.id)
    ports = list(net.ports(device_id=router.id))
    # the gateway port belongs to no project, so only the interface shows to the owner
    assert [p.device_owner for p in ports] == ["network:router_interface"]
    assert router.external_gateway_info["network_id"] == _public(tenant.conn).id
    with pytest.raises(exceptions.ConflictException):
        net.delete_router(router)  # RouterInUse
    with pytest.raises(exceptions.ConflictException):
        net.delete_network(network)  # NetworkInUse
    interface = ports[0]
    net.remove_interface_from_router(router, port_id=interface.id)
    net.delete_router(router)
    net.delete_network(network)
    assert list(net.networks(project_id=tenant.project_id)) == []


def test_project_filters(admin_conn: Any, tenant_factory: Any) -> None:
    a, b = tenant_factory(), tenant_factory()
    na = a.conn.network.create_network(name="a-net")
    nb = b.conn.network.create_network(name="b-net")
    ra = a.conn.network.create_router(name="a-router")
    assert {n.id for n in admin_conn.network.networks(project_id=a.project_id)} == {na.id}
    assert nb.id not in {n.id for n in a.conn.network.networks()}
    # an admin-role token lists every project's routers when no filter is given
    assert ra.id in {r.id for r in admin_conn.network.routers()}
    assert ra.id not in {r.id for r in b.conn.network.routers()}
    with pytest.raises(exceptions.NotFoundException):
        b.conn.network.get_router(ra.id)


def _routed_port(tenant: Tenant, cidr: str) -> tuple[Any, Any, Any]:
    """(router, subnet, port): a port on a subnet a router joins to the public network."""
    net = tenant.conn.network
    network = net.create_network(name=f"net-{cidr}")
    subnet = net.create_subnet(network_id=network.id, cidr=cidr, ip_version=4)
    router = net.create_router(external_gateway_info={"network_id": _public(tenant.conn).id})
    net.add_interface_to_router(router, subnet_id=subnet.id)
    return router, subnet, net.create_port(network_id=network.id)


def test_floating_ip_follows_port(tenant: Tenant) -> None:
    net = tenant.conn.network
    _router, _subnet, port = _routed_port(tenant, "10.2.0.0/24")
    fip = net.create_ip(floating_network_id=_public(tenant.conn).id, port_id=port.id)
    assert net.get_ip(fip.id).port_id == port.id
    assert [f.id for f in net.ips(project_id=tenant.project_id)] == [fip.id]
    net.delete_port(port)
    assert net.get_ip(fip.id).port_id is None
    net.delete_ip(fip)


def test_security_group_rules_notify(tenant: Tenant, recorder: RecordingSink) -> None:
    net = tenant.conn.network
    sg = net.create_security_group(name="mongo")
    rule = net.create_security_group_rule(
        security_group_id=sg.id,
        direction="ingress",
        ethertype="IPv4",
        protocol="tcp",
        port_range_min=27017,
        port_range_max=27017,
        remote_ip_prefix="0.0.0.0/0",
    )
    net.delete_security_group_rule(rule)
    created = recorder.of_type("security_group_rule.create.end")[0]
    assert created.exchange == "neutron"
    body = created.payload["security_group_rule"]
    assert (body["id"], body["security_group_id"], body["project_id"]) == (
        rule.id,
        sg.id,
        tenant.project_id,
    )
    assert (body["port_range_min"], body["remote_ip_prefix"]) == (27017, "0.0.0.0/0")
    deleted = recorder.of_type("security_group_rule.delete.end")[0]
    assert deleted.payload == {"security_group_rule_id": rule.id}
    assert deleted.context["project_id"] == tenant.project_id


def test_default_security_group_exists_and_is_kept(tenant: Tenant) -> None:
    groups = list(tenant.conn.network.security_groups(project_id=tenant.project_id))
    assert [g.name for g in groups] == ["default"]
    with pytest.raises(exceptions.ConflictException):
        tenant.conn.network.delete_security_group(groups[0])


def test_server_ports_go_with_the_server(tenant: Tenant, sim_cloud: Cloud) -> None:
    network = tenant.conn.network.create_network(name="vm-net")
    tenant.conn.network.create_subnet(network_id=network.id, cidr="10.3.0.0/24", ip_version=4)
    sid = tenant.boot("with-port", networks=[network.id])
    ports = list(tenant.conn.network.ports(device_id=sid))
    assert [p.device_owner for p in ports] == ["compute:nova"]
    addresses = tenant.conn.compute.get_server(sid).addresses
    assert addresses["vm-net"][0]["addr"] == ports[0].fixed_ips[0]["ip_address"]
    tenant.conn.compute.delete_server(sid)
    assert list(tenant.conn.network.ports(device_id=sid)) == []


def test_floating_ip_shows_its_router_which_keeps_the_interface(tenant: Tenant) -> None:
    net = tenant.conn.network
    router, subnet, port = _routed_port(tenant, "10.4.0.0/24")
    fip = net.create_ip(floating_network_id=_public(tenant.conn).id, port_id=port.id)
    assert fip.router_id == router.id
    assert net.get_ip(fip.id).router_id == router.id
    assert [ip.router_id for ip in net.ips(project_id=tenant.project_id)] == [router.id]
    # the interface carries the floating IP's traffic: Neutron keeps it
    with pytest.raises(exceptions.ConflictException, match="required by one or more floating"):
        net.remove_interface_from_router(router, subnet_id=subnet.id)
    net.update_ip(fip, port_id=None)
    assert net.get_ip(fip.id).router_id is None
    net.remove_interface_from_router(router, subnet_id=subnet.id)
    # no router joins the port's subnet to the public network any more
    with pytest.raises(exceptions.NotFoundException, match="is not reachable from subnet"):
        net.update_ip(fip, port_id=port.id)
    assert net.get_ip(fip.id).port_id is None


def test_duplicate_security_group_rule_is_refused(tenant: Tenant) -> None:
    net = tenant.conn.network
    sg = net.create_security_group(name="dup")
    ssh = {
        "security_group_id": sg.id,
        "direction": "ingress",
        "ethertype": "IPv4",
        "protocol": "tcp",
        "port_range_min": 22,
        "port_range_max": 22,
        "remote_ip_prefix": "0.0.0.0/0",
    }
    first = net.create_security_group_rule(**ssh)
    # the same rule, said otherwise: protocol by number, no prefix for "anywhere", a note
    for same in (
        ssh,
        dict(ssh, protocol="6"),
        {k: v for k, v in ssh.items() if k != "remote_ip_prefix"},
        dict(ssh, description="again"),
    ):
        with pytest.raises(exceptions.ConflictException, match=f"Rule id is {first.id}"):
            net.create_security_group_rule(**same)
    # a new group's own egress rules are there already
    with pytest.raises(exceptions.ConflictException, match="already exists"):
        net.create_security_group_rule(
            security_group_id=sg.id, direction="egress", ethertype="IPv4"
        )
    other = net.create_security_group_rule(**dict(ssh, port_range_min=2222, port_range_max=2222))
    assert other.id != first.id
    assert len([r for r in net.security_group_rules(security_group_id=sg.id)]) == 4


def test_provider_and_binding_details_are_for_administrators(
    tenant: Tenant, admin_conn: Any
) -> None:
    network = tenant.conn.network.create_network(name="private-details")
    tenant.conn.network.create_subnet(network_id=network.id, cidr="10.5.0.0/24", ip_version=4)
    port = tenant.conn.network.create_port(network_id=network.id)
    assert tenant.conn.network.get_network(network.id).provider_network_type is None
    assert admin_conn.network.get_network(network.id).provider_network_type == "vxlan"
    assert admin_conn.network.get_network(network.id).provider_segmentation_id is not None
    assert tenant.conn.network.get_port(port.id).binding_vif_type is None
    assert admin_conn.network.get_port(port.id).binding_vif_type == "unbound"
    assert tenant.conn.network.get_port(port.id).binding_vnic_type == "normal"


def test_security_group_a_port_uses_is_kept(tenant: Tenant) -> None:
    net = tenant.conn.network
    network = net.create_network(name="sg-net")
    net.create_subnet(network_id=network.id, cidr="10.6.0.0/24", ip_version=4)
    group = net.create_security_group(name="web")
    port = net.create_port(network_id=network.id)
    net.update_port(port, security_group_ids=[group.id])
    assert net.get_port(port.id).security_group_ids == [group.id]
    with pytest.raises(exceptions.ConflictException, match="in use"):
        net.delete_security_group(group)
    net.update_port(port, security_group_ids=[])
    net.delete_security_group(group)
    with pytest.raises(exceptions.NotFoundException):
        net.update_port(port, security_group_ids=[group.id])
