"""Parsing: every conformance sample, both oslo wire forms, every family, clear errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reclaim import routes
from reclaim.models.allocation import AllocationPayload
from reclaim.models.glance import ImageMemberPayload, ImagePayload
from reclaim.models.keystone import IdentityPayload
from reclaim.models.neutron import SecurityGroupRulePayload
from reclaim.models.nova import InstancePayload
from reclaim.redact import scrub_text
from reclaim.wire import ParseError, check_depth, nesting_depth, read_envelope
from tests.conftest import EVENTS, load_event
from tests.support.samples import CONFORMANCE, nova_sample, on_the_wire, sample_names, v2

TS = "2026-03-01 10:00:00.123456"


@pytest.mark.parametrize("name", sample_names())
def test_every_conformance_sample_parses_unchanged(name: str) -> None:
    sample = nova_sample(name)
    for body in (on_the_wire(sample, TS), v2(on_the_wire(sample, TS))):
        n = routes.parse(body)
        if sample["event_type"].endswith(".start") or sample["event_type"] == "instance.create.end":
            assert n is None  # not routed: no state the policy cares about
            continue
        assert n is not None
        data = sample["payload"]["nova_object.data"]
        assert isinstance(n.payload, InstancePayload)
        assert n.payload.server_id == data["uuid"]
        assert n.payload.project_id == data["tenant_id"]
        assert n.payload.state == data["state"]
        assert n.payload.image_id == data["image_uuid"]
        assert n.timestamp == datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)


def test_resolved_samples_equal_resolved_refs() -> None:
    for name in sample_names():
        resolved = CONFORMANCE / "resolved" / name
        if resolved.exists():
            assert nova_sample(name) == json.loads(resolved.read_text()), name


def test_instance_update_reads_state_update() -> None:
    n = routes.parse(on_the_wire(nova_sample("instance-update.json"), TS))
    assert n is not None and n.payload.old_state == "building"


FAMILIES = ("nova", "nova-legacy", "keystone", "glance", "allocation", "neutron")
NOTIFICATIONS = sorted(p for f in FAMILIES for p in (EVENTS / f).glob("*.json"))


@pytest.mark.parametrize("path", NOTIFICATIONS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_sample_event_parses(path: Path) -> None:
    n = routes.parse(json.loads(path.read_text()))
    assert n is not None, f"{path.name} is not routed"
    assert n.timestamp.tzinfo is not None


def test_v1_and_v2_forms_parse_alike() -> None:
    for path in (p for p in NOTIFICATIONS if p.name.endswith(".v1.json")):
        flat = routes.parse(json.loads(path.read_text()))
        wrapped = routes.parse(json.loads(path.with_name(path.name.replace(".v1", "")).read_text()))
        assert flat == wrapped, path.name


def test_legacy_nova_payload() -> None:
    n = routes.parse(load_event("nova-legacy/compute.instance.update"))
    assert n is not None
    p = n.payload
    assert isinstance(p, InstancePayload) and not p.versioned
    assert (p.server_id, p.state, p.old_state) == (
        "3c1e5a7b-9d2f-4a6c-8e0b-1d3f5a7c9e2b",
        "stopped",
        "active",
    )
    assert p.image_id == "6f9a1c3e-5b7d-4e2f-8a0c-2e4f6a8b0c1d"  # last part of image_ref_url
    assert n.context["project_id"] == p.project_id


@pytest.mark.parametrize("fmt", ["basic", "cadf"])
def test_keystone_formats(fmt: str) -> None:
    n = routes.parse(load_event(f"keystone/identity.user.deleted.{fmt}"))
    assert n is not None and isinstance(n.payload, IdentityPayload)
    assert n.payload.resource_id == "1e6d4c2b0a8f4e3d9c7b5a3f1e0d8c6b"
    assert n.payload.cadf is (fmt == "cadf")
    if fmt == "cadf":
        assert n.payload.action == "deleted.user"


def test_keystone_cadf_without_resource_info_uses_target() -> None:
    body = load_event("keystone/identity.project.deleted.cadf.v1")
    del body["payload"]["resource_info"]
    n = routes.parse(body)
    assert n is not None and n.payload.resource_id == "b2e1d3c5f7a94d1f8e6a0b1c2d3e4f5a"


def test_glance_payloads() -> None:
    image = routes.parse(load_event("glance/image.update"))
    assert image is not None and isinstance(image.payload, ImagePayload)
    assert (image.payload.visibility, image.payload.owner) == (
        "community",
        "b2e1d3c5f7a94d1f8e6a0b1c2d3e4f5a",
    )
    member = routes.parse(load_event("glance/image.member.create"))
    assert member is not None and isinstance(member.payload, ImageMemberPayload)
    assert member.payload.member_id == "a1f0c2d4e6b84c0e9d7f1a2b3c4d5e6f"


def test_allocation_and_nectar_expiry() -> None:
    ours = routes.parse(load_event("allocation/allocation.ended"))
    nectar = routes.parse(load_event("allocation/expiry.allocation.restrict"))
    assert ours is not None and nectar is not None
    assert isinstance(ours.payload, AllocationPayload) and isinstance(
        nectar.payload, AllocationPayload
    )
    assert ours.payload.project_id == nectar.payload.project_id
    assert ours.payload.end_date == datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC)
    assert nectar.payload.end_date == datetime(2026, 2, 28, tzinfo=UTC)
    assert nectar.priority == "AUDIT"
    assert [c.email for c in nectar.payload.contacts] == [
        "pi.beta@example.edu",
        "approver@example.edu",
    ]


def test_security_group_rule_create_and_delete() -> None:
    created = routes.parse(load_event("neutron/security_group_rule.create.end"))
    deleted = routes.parse(load_event("neutron/security_group_rule.delete.end"))
    assert created is not None and isinstance(created.payload, SecurityGroupRulePayload)
    assert created.payload.rule.port_range_min == 27017
    assert deleted is not None and deleted.payload.rule.id == created.payload.rule.id


def test_unknown_event_type_is_ignored() -> None:
    body = on_the_wire(nova_sample("instance-pause-end.json"), TS)
    body["event_type"] = "orchestration.stack.create.end"
    assert routes.parse(body) is None
    assert routes.commands_for(body, __import__("reclaim.settings").settings.PolicySettings()) == []


def test_bytes_and_str_bodies() -> None:
    body = on_the_wire(nova_sample("instance-pause-end.json"), TS)
    text = json.dumps(v2(body))
    assert routes.parse(text) == routes.parse(text.encode()) == routes.parse(body)


@pytest.mark.parametrize(
    ("body", "where", "problem"),
    [
        (b"\xff\xfe", "body", "not UTF-8"),
        ("[1, 2]", "body", "expected a JSON object"),
        ("{nope", "body", "not JSON"),
        ({"oslo.version": "2.0", "oslo.message": "{broken"}, "oslo.message", "not JSON"),
        ({"oslo.version": "2.0", "oslo.message": 42}, "oslo.message", "JSON string"),
        ({"event_type": "x", "payload": {}}, "envelope", "missing message_id, timestamp"),
        ({"message_id": "m", "timestamp": "yesterday", "event_type": "instance.power_off.end",
          "priority": "INFO", "publisher_id": "p", "payload": {}}, "timestamp", "not a timestamp"),
        ({"message_id": "m", "timestamp": TS, "event_type": "instance.power_off.end",
          "priority": "INFO", "publisher_id": "p", "payload": []}, "payload", "expected an object"),
    ],
)  # fmt: skip
def test_malformed_bodies_raise_one_clear_error(body: object, where: str, problem: str) -> None:
    with pytest.raises(ParseError) as info:
        routes.parse(body)  # type: ignore[arg-type]
    assert info.value.where == where
    assert problem in str(info.value)


def test_payload_of_wrong_type_names_the_field() -> None:
    body = on_the_wire(nova_sample("instance-power_off-end.json"), TS)
    body["payload"]["nova_object.data"]["uuid"] = None
    with pytest.raises(ParseError) as info:
        routes.parse(body)
    assert info.value.where == "payload.server_id"


def test_deeply_nested_body_is_a_parse_error_not_a_crash() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(ParseError):
        routes.parse('{"oslo.message": "' + deep + '"}')


def test_envelope_context_and_priority() -> None:
    env = read_envelope(load_event("nova/instance.power_off.end"))
    assert env.priority == "INFO"
    assert env.context["user_id"] == "0d5c3b1a9f7e4d2c8b6a4f2e0d9c7b5a"


def test_nesting_depth_counts_arrays_and_objects_outside_strings() -> None:
    assert nesting_depth('{"a": [1, {"b": []}], "c": "[[[[", "d": "\\"[["}') == 4
    assert nesting_depth(b"[" * 5000 + b"]" * 5000) == 5000
    check_depth("[" * 100 + "]" * 100)
    check_depth('"' + "[" * 5000 + '"')  # inside a string: no nesting at all
    samples = [*EVENTS.rglob("*.json"), *CONFORMANCE.glob("*.json")]
    assert len(samples) > 10
    for path in samples:
        check_depth(path.read_bytes())  # real notifications pass
    with pytest.raises(ParseError, match="nested too deeply"):
        check_depth("[" * 101 + "]" * 101)


def test_a_deep_body_is_masked_as_text_without_a_recursive_decode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def loads(text: str) -> object:
        raise AssertionError("json.loads walked a body nested too deeply")

    monkeypatch.setattr(json, "loads", loads)
    deep = "[" * 50_000 + '{"a": 1}' + "]" * 50_000
    assert scrub_text(deep) == deep
