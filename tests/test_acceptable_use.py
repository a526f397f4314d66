"""Acceptable use: end-of-life images and database ports open to the world, as notices."""

from __future__ import annotations

from typing import Any

import pytest

from reclaim import routes
from reclaim.commands import TimerCommand
from reclaim.models.neutron import SecurityGroupRule
from reclaim.policy.acceptable_use import EXPOSED_REMEDIATION, exposed_ports
from reclaim.settings import PolicySettings
from tests.conftest import load_event
from tests.support.builders import T0, days, event

POLICY = PolicySettings()


def image(**over: Any) -> dict[str, Any]:
    base = {"id": "img-1", "name": "centos-7", "owner": "admins", "visibility": "public",
            "os_hidden": False, "properties": {"os_distro": "centos", "os_version": "7"}}  # fmt: skip
    return {**base, **over}


def rule(**over: Any) -> dict[str, Any]:
    base = {"id": "r-1", "security_group_id": "sg-1", "project_id": "p-1", "direction": "ingress",
            "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 27017, "port_range_max": 27017,
            "remote_ip_prefix": "0.0.0.0/0", "remote_group_id": None}  # fmt: skip
    return {**base, **over}


def schedules(cmds: list[TimerCommand]) -> list[tuple[str, str, object]]:
    return [(c.rule, c.action, c.due_at) for c in cmds if c.op == "schedule"]


def decide(
    event_type: str, payload: dict[str, Any], policy: PolicySettings = POLICY, at: Any = T0
) -> list[TimerCommand]:
    return routes.decide(event(event_type, payload, at), policy)


# -- end-of-life images ------------------------------------------------------------------


def test_hidden_image_warns_its_users_now_and_reminds_later() -> None:
    cmds = decide("image.update", image(os_hidden=True))
    assert schedules(cmds) == [
        ("eol-image", "warn_eol", T0),
        ("eol-image-reminder", "warn_eol", T0 + days(30)),
    ]
    assert cmds[0].detail["os_distro"] == "centos" and cmds[0].resource_type == "image"


def test_unhiding_cancels_the_warnings() -> None:
    cmds = decide("image.update", image(os_hidden=False))
    assert {c.op for c in cmds} == {"cancel"} and {c.rule for c in cmds} == {
        "eol-image",
        "eol-image-reminder",
    }


def test_end_of_life_property_marks_the_image() -> None:
    assert schedules(decide("image.update", image(properties={"end_of_life": "true"})))
    assert not schedules(decide("image.update", image(properties={"end_of_life": "false"})))
    custom = PolicySettings(eol_property="eol", eol_when_hidden=False)
    assert schedules(decide("image.update", image(properties={"eol": "yes"}), custom))
    assert not schedules(decide("image.update", image(os_hidden=True), custom))


def test_configured_release_with_an_end_date() -> None:
    p = PolicySettings(
        eol_releases=[{"os_distro": "CentOS", "os_version": "7", "end": "2026-06-30"}]
    )
    cmds = decide("image.create", image(), p)
    [(_, _, warn_at), (_, _, remind_at)] = schedules(cmds)
    assert warn_at == T0.replace(month=6, day=30, hour=0) and remind_at == warn_at + days(30)
    assert not schedules(
        decide("image.create", image(properties={"os_distro": "centos", "os_version": "9"}), p)
    )


def test_real_format_glance_events_in_both_wire_forms() -> None:
    for name in ("glance/image.update", "glance/image.update.v1"):
        body = load_event(name)
        assert routes.commands_for(body, POLICY)  # not hidden: cancels only
        assert not [c for c in routes.commands_for(body, POLICY) if c.op == "schedule"]


# -- exposed services --------------------------------------------------------------------


def test_mongodb_open_to_the_world_warns_the_project_now() -> None:
    cmds = decide("security_group_rule.create.end", {"security_group_rule": rule()})
    assert schedules(cmds) == [
        ("exposed-service", "warn_exposed", T0),
        ("exposed-service-reminder", "warn_exposed", T0 + days(7)),
    ]
    assert cmds[0].project_id == "p-1" and cmds[0].detail["ports"] == "MongoDB 27017"


@pytest.mark.parametrize(
    ("over", "expected"),
    [
        ({"remote_ip_prefix": "::/0", "ethertype": "IPv6"}, ["MongoDB 27017"]),
        (
            {"port_range_min": 27000, "port_range_max": 28000},
            ["MongoDB 27017", "MongoDB 27018", "MongoDB 27019"],
        ),
        ({"protocol": None, "port_range_min": None, "port_range_max": None}, "all"),
        (
            {"protocol": "udp", "port_range_min": 11211, "port_range_max": 11211},
            ["Memcached 11211"],
        ),
        ({"remote_ip_prefix": None}, ["MongoDB 27017"]),  # no prefix, no group: any address
        ({"direction": "egress"}, []),
        ({"remote_ip_prefix": None, "remote_group_id": "sg-2"}, []),
        ({"remote_ip_prefix": "10.0.0.0/8"}, []),
        ({"remote_ip_prefix": "0.0.0.0/1"}, []),
        ({"protocol": "icmp", "port_range_min": None, "port_range_max": None}, []),
        ({"port_range_min": 22, "port_range_max": 22}, []),
    ],
)
def test_edge_cases(over: dict[str, Any], expected: list[str] | str) -> None:
    found = [f"{s} {p}" for s, p in exposed_ports(SecurityGroupRule(**rule(**over)), POLICY)]
    if expected == "all":
        assert len(found) == sum(len(p) for p in POLICY.exposed_ports.values())
    else:
        assert found == expected


def test_deleting_the_rule_cancels_the_reminder() -> None:
    cmds = routes.commands_for(load_event("neutron/security_group_rule.delete.end.v1"), POLICY)
    assert {c.op for c in cmds} == {"cancel"}
    assert {c.rule for c in cmds} == {
        "exposed-service",
        "exposed-service-reminder",
        "exposed-service-removal",
    }


def test_real_format_neutron_events_in_both_wire_forms() -> None:
    for name in (
        "neutron/security_group_rule.create.end",
        "neutron/security_group_rule.create.end.v1",
    ):
        cmds = routes.commands_for(load_event(name), POLICY)
        assert [c.action for c in cmds if c.op == "schedule"] == ["warn_exposed", "warn_exposed"]


def test_remediation_is_off_by_default_and_waits_a_grace_when_on() -> None:
    assert EXPOSED_REMEDIATION.id not in {
        c.rule for c in decide("security_group_rule.create.end", {"security_group_rule": rule()})
    }
    on = PolicySettings(exposed_remediation=True, exposed_remediation_grace="2d")
    cmds = decide("security_group_rule.create.end", {"security_group_rule": rule()}, on)
    [removal] = [c for c in cmds if c.action == "delete_rule"]
    assert removal.due_at == T0 + days(2)
    assert sorted(
        c.due_at for c in cmds if c.rule == EXPOSED_REMEDIATION.id and c.action == "notify"
    ) == [T0, T0 + days(1)]


def test_project_from_the_context_when_the_rule_has_none() -> None:
    body = load_event("neutron/security_group_rule.create.end.v1")
    body["payload"]["security_group_rule"].pop("project_id")
    body["payload"]["security_group_rule"].pop("tenant_id")
    [first, *_] = routes.commands_for(body, POLICY)
    assert first.project_id == "a1f0c2d4e6b84c0e9d7f1a2b3c4d5e6f"


# -- driven by the simulated cloud's own notifications -------------------------------------


def _decided(recorder: Any, event_type: str, driver_v2: bool) -> list[TimerCommand]:
    from tests.support.samples import v2

    [n] = recorder.of_type(event_type)
    body = n.wire()
    return routes.commands_for(v2(body) if driver_v2 else body, POLICY)


@pytest.mark.parametrize("driver_v2", [False, True], ids=["messaging", "messagingv2"])
def test_the_simulated_cloud_hiding_an_image_drives_the_eol_rule(driver_v2: bool) -> None:
    from reclaim_sim import Cloud, SimClock

    cloud = Cloud(clock=SimClock(T0))
    image = cloud.image.create_image(
        owner=None, name="centos-7", visibility="public", status="active"
    )
    recorder = cloud.record_notifications()
    cloud.image.update(cloud.admin_ctx(), image.id, {"os_hidden": True})
    assert [
        c.action for c in _decided(recorder, "image.update", driver_v2) if c.op == "schedule"
    ] == [
        "warn_eol",
        "warn_eol",
    ]
    recorder.clear()
    cloud.image.update(cloud.admin_ctx(), image.id, {"os_hidden": False})
    assert {c.op for c in _decided(recorder, "image.update", driver_v2)} == {"cancel"}


@pytest.mark.parametrize("driver_v2", [False, True], ids=["messaging", "messagingv2"])
def test_the_simulated_cloud_opening_mongodb_drives_the_exposed_rule(driver_v2: bool) -> None:
    from reclaim_sim import Cloud, SimClock

    cloud = Cloud(clock=SimClock(T0))
    project = cloud.identity.create_project("p")
    ctx = cloud.ctx(cloud.admin_user_id, project.id)
    sg = cloud.network.create_security_group(ctx, "db")
    recorder = cloud.record_notifications()
    rule = cloud.network.create_security_group_rule(
        ctx, sg["id"], direction="ingress", ethertype="IPv4", protocol="tcp",
        port_range_min=27017, port_range_max=27017, remote_ip_prefix="0.0.0.0/0",
    )  # fmt: skip
    cmds = _decided(recorder, "security_group_rule.create.end", driver_v2)
    [warn, _] = [c for c in cmds if c.op == "schedule"]
    assert (warn.action, warn.project_id, warn.detail["ports"]) == (
        "warn_exposed",
        project.id,
        "MongoDB 27017",
    )
    recorder.clear()
    cloud.network.delete_security_group_rule(ctx, rule["id"])
    cancels = _decided(recorder, "security_group_rule.delete.end", driver_v2)
    assert {c.op for c in cancels} == {"cancel"} and {c.resource_id for c in cancels} == {
        rule["id"]
    }
