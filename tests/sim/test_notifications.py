"""Notifications the simulation emits: shape against Nova's conformance samples, parsing
with reclaim's own parser, simulated timestamps, and delivery through oslo.messaging."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import kombu
import pytest

from reclaim import routes
from reclaim_sim import Cloud, Notification, SimClock, SimConfig
from reclaim_sim.clock import oslo_timestamp
from tests.sim.conftest import START
from tests.support.samples import nova_sample, on_the_wire


@pytest.fixture
def cloud() -> Iterator[Cloud]:
    """An in-process cloud (no HTTP needed to check what it emits)."""
    c = Cloud(
        clock=SimClock(START),
        config=SimConfig(notification_format="both", notify_on_state_change="vm_state"),
    )
    yield c
    c.close()


def _server(cloud: Cloud, state: str = "active") -> str:
    project = cloud.identity.create_project(f"p-{uuid.uuid4().hex[:6]}")
    image = cloud.image.create_image(owner=project.id, name="base", status="active")
    return cloud.compute.create_server(
        project_id=project.id,
        user_id=cloud.admin_user_id,
        name="vm",
        image_id=image.id,
        state=state,
        metadata={"k": "v"},
    ).id


Act = Callable[[Cloud, str], None]


def _action(name: str) -> Act:
    def act(cloud: Cloud, sid: str) -> None:
        cloud.compute.action(cloud.admin_ctx(), sid, name)

    return act


def _delete(cloud: Cloud, sid: str) -> None:
    cloud.compute.delete(cloud.admin_ctx(), sid)


#: sample file -> (state the server starts in, what to do)
CASES: dict[str, tuple[str, Act]] = {
    "instance-power_off-end.json": ("active", _action("os-stop")),
    "instance-power_on-end.json": ("stopped", _action("os-start")),
    "instance-suspend-end.json": ("active", _action("suspend")),
    "instance-resume-end.json": ("suspended", _action("resume")),
    "instance-pause-end.json": ("active", _action("pause")),
    "instance-unpause-end.json": ("paused", _action("unpause")),
    "instance-shelve-end.json": ("stopped", _action("shelve")),
    "instance-shelve_offload-end.json": ("stopped", _action("shelve")),
    "instance-unshelve-end.json": ("shelved_offloaded", _action("unshelve")),
    "instance-delete-end.json": ("stopped", _delete),
    "instance-update.json": ("active", _action("os-stop")),
}


def _data_keys(payload: dict[str, Any]) -> set[str]:
    return set(payload["nova_object.data"])


@pytest.mark.parametrize("sample_name", sorted(CASES))
def test_versioned_notification_matches_conformance_sample(cloud: Cloud, sample_name: str) -> None:
    sample = nova_sample(sample_name)
    start, act = CASES[sample_name]
    sid = _server(cloud, start)
    recorder = cloud.record_notifications()
    cloud.clock.advance(3600)
    act(cloud, sid)
    emitted = recorder.of_type(sample["event_type"])
    assert emitted, f"no {sample['event_type']} emitted"
    n = emitted[-1]
    assert (n.exchange, n.topic) == ("nova", "versioned_notifications")
    assert n.publisher_id == "nova-compute:sim-compute"
    assert n.priority == sample["priority"]
    payload, wanted = n.payload, sample["payload"]
    for key in ("nova_object.name", "nova_object.version", "nova_object.namespace"):
        assert payload[key] == wanted[key]
    assert _data_keys(payload) == _data_keys(wanted)
    if sample["event_type"] != "instance.update":
        assert payload["nova_object.data"]["state"] == wanted["nova_object.data"]["state"]
    assert payload["nova_object.data"]["updated_at"] == "2026-03-01T10:00:00Z"

    # reclaim's parser reads both into the same model, the simulation's with sim time
    ours = routes.parse(n.wire())
    theirs = routes.parse(on_the_wire(sample, oslo_timestamp(START)))
    assert ours is not None and theirs is not None
    assert type(ours.payload) is type(theirs.payload)
    assert ours.event_type == theirs.event_type
    assert ours.payload.server_id == sid
    assert ours.timestamp == cloud.clock.now()
    assert ours.payload.metadata == {"k": "v"}
    assert ours.payload.image_id == cloud.compute.servers.get(sid, _gone(n)).image_id


def _gone(n: Notification) -> Any:
    class Deleted:
        image_id = n.payload["nova_object.data"]["image_uuid"]

    return Deleted()


def test_legacy_notifications_parse(cloud: Cloud) -> None:
    sid = _server(cloud)
    recorder = cloud.record_notifications()
    cloud.compute.action(cloud.admin_ctx(), sid, "shelve")
    legacy = [n for n in recorder.all() if (n.exchange, n.topic) == ("nova", "notifications")]
    kinds = [n.event_type for n in legacy if n.event_type.endswith(".end")]
    assert kinds == ["compute.instance.shelve.end", "compute.instance.shelve_offload.end"]
    assert all(n.publisher_id == "compute.sim-compute" for n in legacy)
    update = next(n for n in legacy if n.event_type == "compute.instance.update")
    assert (update.payload["old_state"], update.payload["state"]) == ("active", "shelved")
    end = routes.parse(next(n for n in legacy if n.event_type.endswith("shelve.end")).wire())
    assert end is not None
    assert (end.payload.server_id, end.payload.state) == (sid, "shelved")
    assert end.payload.versioned is False
    for key in (
        "instance_id",
        "tenant_id",
        "user_id",
        "state",
        "state_description",
        "display_name",
        "image_ref_url",
        "launched_at",
        "created_at",
        "metadata",
    ):
        assert key in legacy[-1].payload


def test_notification_format_selects_what_is_sent(cloud: Cloud) -> None:
    sid = _server(cloud)
    recorder = cloud.record_notifications()
    for fmt, topics in (
        ("unversioned", {"notifications"}),
        ("versioned", {"versioned_notifications"}),
    ):
        recorder.clear()
        cloud.config.notification_format = fmt  # type: ignore[assignment]
        cloud.compute.action(cloud.admin_ctx(), sid, "os-stop")
        cloud.compute.action(cloud.admin_ctx(), sid, "os-start")
        assert {n.topic for n in recorder.all()} == topics


def test_state_change_updates_follow_notify_on_state_change(cloud: Cloud) -> None:
    sid = _server(cloud)
    recorder = cloud.record_notifications()
    cloud.config.notify_on_state_change = None
    cloud.compute.action(cloud.admin_ctx(), sid, "os-stop")
    assert not [n for n in recorder.all() if "update" in n.event_type]
    cloud.config.notify_on_state_change = "vm_and_task_state"
    recorder.clear()
    cloud.compute.action(cloud.admin_ctx(), sid, "os-start")
    updates = [
        n.payload["nova_object.data"]["state_update"]["nova_object.data"]
        for n in recorder.of_type("instance.update")
    ]
    assert [(u["old_task_state"], u["new_task_state"]) for u in updates] == [
        (None, "powering-on"),
        ("powering-on", None),
    ]


def test_no_sink_means_no_payloads_built(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    sid = _server(cloud)
    monkeypatch.setattr(cloud.compute, "_versioned_payload", None)  # would fail if called
    cloud.compute.action(cloud.admin_ctx(), sid, "os-stop")
    assert cloud.compute.servers[sid].vm_state == "stopped"


def test_other_services_parse(cloud: Cloud) -> None:
    recorder = cloud.record_notifications()
    project = cloud.identity.create_project("doomed")
    image = cloud.image.create_image(
        owner=project.id, name="x", visibility="shared", status="active"
    )
    cloud.image.add_member(None, image.id, cloud.admin_project_id)
    sg = cloud.network.create_security_group(cloud.admin_ctx(), "db", project_id=project.id)
    rule = cloud.network.create_security_group_rule(
        cloud.admin_ctx(),
        sg["id"],
        protocol="tcp",
        port_range_min=27017,
        port_range_max=27017,
        remote_ip_prefix="0.0.0.0/0",
    )
    cloud.network.delete_security_group_rule(cloud.admin_ctx(), rule["id"])
    cloud.image.delete(None, image.id)
    cloud.identity.delete_project(project.id)
    parsed = {}
    for n in recorder.all():
        result = routes.parse(n.wire())
        if result is not None:
            parsed[n.event_type] = result
    for event in (
        "identity.project.deleted",
        "image.create",
        "image.delete",
        "image.member.create",
        "security_group_rule.create.end",
        "security_group_rule.delete.end",
    ):
        assert event in parsed, event
        assert parsed[event].timestamp == START


# -- delivery through oslo.messaging ------------------------------------------------------
def _drain(
    conn: kombu.Connection, exchange: str, routing_key: str, trigger: Callable[[], None]
) -> list[Any]:
    ex = kombu.Exchange(exchange, type="topic", durable=False)
    q = kombu.Queue(
        f"test-{uuid.uuid4().hex[:8]}", ex, routing_key=routing_key, durable=False, auto_delete=True
    )
    got: list[Any] = []
    with conn.Consumer(
        q, callbacks=[lambda body, msg: (got.append(body), msg.ack())], accept=["json"]
    ):
        trigger()
        for _ in range(50):
            try:
                conn.drain_events(timeout=0.1)
            except TimeoutError:
                if got:
                    break
    return got


@pytest.mark.parametrize("driver", ["messagingv2", "messaging"])
def test_published_on_the_right_exchange_and_topic_in_memory(driver: str) -> None:
    cloud = Cloud(
        clock=SimClock(START),
        config=SimConfig(notification_format="versioned"),
        transport_url="kombu+memory:////",
        driver=driver,
    )  # type: ignore[arg-type]
    sid = _server(cloud)
    try:
        with kombu.Connection("memory://") as conn:
            bodies = _drain(
                conn,
                "nova",
                "versioned_notifications.info",
                lambda: cloud.compute.action(cloud.admin_ctx(), sid, "os-stop"),
            )
    finally:
        cloud.close()
    messages = [json.loads(b["oslo.message"]) if "oslo.message" in b else b for b in bodies]
    if driver == "messagingv2":
        assert all(b["oslo.version"] == "2.0" for b in bodies)
    end = next(m for m in messages if m["event_type"] == "instance.power_off.end")
    assert end["timestamp"] == oslo_timestamp(START)
    assert end["_context_project_id"] == cloud.admin_project_id
    parsed = routes.parse(bodies[messages.index(end)])
    assert parsed is not None and parsed.payload.state == "stopped"


@pytest.mark.rabbitmq
def test_published_to_rabbitmq() -> None:
    url = "amqp://guest:guest@127.0.0.1:5672//"
    try:
        with kombu.Connection(url, connect_timeout=2) as probe:
            probe.ensure_connection(max_retries=1)
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"no RabbitMQ: {exc}")
    cloud = Cloud(clock=SimClock(START), transport_url="rabbit://guest:guest@127.0.0.1:5672/")
    try:
        with kombu.Connection(url) as conn:
            bodies = _drain(
                conn,
                "keystone",
                "notifications.info",
                lambda: cloud.identity.create_project("rabbit-made"),
            )
    finally:
        cloud.close()
    message = json.loads(bodies[0]["oslo.message"])
    assert message["event_type"] == "identity.project.created"
    assert message["publisher_id"] == "identity.sim"
