"""10,000 malformed or hostile bodies mixed with good ones: the listener stays up and loses none."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import kombu
import pytest

from reclaim.bus.settings import BusSettings
from reclaim.deadletters import DeadLetterStore
from reclaim.settings import PolicySettings
from reclaim.store import DynamoTimerStore
from tests.bus.conftest import (
    amqp_url,
    expected_snapshot,
    nova_event,
    queue_depth,
    table_snapshot,
    wait_for,
)

pytestmark = [pytest.mark.rabbitmq, pytest.mark.dynalite, pytest.mark.slow]

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
KEY = "versioned_notifications.info"


def hostile(i: int, rng: random.Random, template: dict[str, Any]) -> tuple[bytes, str]:
    """The ``i``-th bad body (unique) and its content type."""
    kind = i % 10
    if kind == 0:
        return rng.randbytes(rng.randint(1, 512)) + str(i).encode(), "application/octet-stream"
    if kind == 1:
        return b"\x80" + rng.randbytes(64) + str(i).encode(), "application/json"
    if kind == 2:
        depth = rng.choice([2_000, 50_000])
        return b"[" * depth + str(i).encode() + b"]" * depth, "application/json"
    body = {**template, "message_id": f"bad-{i}"}
    if kind == 3:
        body["priority"] = rng.choice([1, None, ["info"], {"x": 1}])
    elif kind == 4:
        body["event_type"] = rng.choice([7, None, ["instance.power_off.end"]])
    elif kind == 5:
        body["payload"] = rng.choice([[1, 2], "text", 3, None])
    elif kind == 6:
        body["timestamp"] = rng.choice([12, "not a time", [], "2026-13-45 99:99:99"])
    elif kind == 7:
        body["payload"] = {"nova_object.data": {"uuid": 5, "state": {"deep": [1] * 50}}}
    elif kind == 8:
        body["payload"] = {"nova_object.data": {"uuid": f"s{i}"}, "junk": "x" * (
            1_500_000 if i % 1000 == 8 else 100)}  # fmt: skip
    else:
        return json.dumps({"oslo.version": "2.0", "oslo.message": f"{{broken {i}"}).encode(), (
            "application/json")  # fmt: skip
    if i % 2:
        return json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(body)}).encode(), (
            "application/json")  # fmt: skip
    return json.dumps(body).encode(), "application/json"


@pytest.mark.timeout(900)  # 10,000 dead letters stored one batch at a time: minutes under load
def test_ten_thousand_hostile_bodies_are_dead_lettered_and_good_ones_applied(
    run_listener: Any, bus_settings: BusSettings, bus_store: DynamoTimerStore
) -> None:
    rng = random.Random(4)
    template = nova_event("tmpl", "power_off", "stopped", T0)
    good = [
        nova_event(
            f"srv-{n % 40:02d}",
            "power_off" if n % 3 else "power_on",
            "stopped" if n % 3 else "active",
            T0 + timedelta(seconds=n),
        )
        for n in range(400)
    ]
    bad = [hostile(i, rng, template) for i in range(10_000)]
    items: list[tuple[bytes, str]] = [(b, t) for b, t in bad]
    step = len(items) // len(good)
    for n, body in enumerate(good):
        items.insert(n * (step + 1), (json.dumps(body).encode(), "application/json"))
    listener = run_listener(batch_size=200)
    with kombu.Connection(amqp_url(bus_settings)) as conn:
        producer = conn.Producer()
        exchange = kombu.Exchange("nova", type="topic", durable=True)
        exchange(conn.default_channel).declare()
        for body, ctype in items:
            producer.publish(body, exchange=exchange, routing_key=KEY, content_type=ctype,
                             content_encoding="utf-8" if ctype == "application/json" else "binary")  # fmt: skip
    expected = expected_snapshot(good, PolicySettings())
    # the last good event comes near the end: the whole stream is through by then
    wait_for(lambda: table_snapshot(bus_store) == expected, timeout=600, every=1.0)
    m = listener.metrics
    wait_for(
        lambda: (
            m.value("reclaim_bus_dead_lettered_total", stage="decode")
            + m.value("reclaim_bus_dead_lettered_total", stage="parse")
            >= len(bad)
        ),
        timeout=300,
        every=0.5,
    )
    wait_for(lambda: queue_depth(bus_settings) == 0)
    letters = DeadLetterStore.beside(bus_store).list()
    assert len(letters) == len(bad)
    assert all(lt.reason for lt in letters)
    assert any(lt.truncated for lt in letters)
    # each good event applied once, or again only where the broker delivered it again (a
    # connection lost before the ack, at least once, as the bus promises): the table above
    # shows that a second apply changed nothing
    redelivered = m.value("reclaim_bus_received_total") - len(items)
    assert 0 <= m.value("reclaim_bus_applied_total") - len(good) <= redelivered
    assert m.value("reclaim_bus_requeued_total") == 0
    # Still up: one more good event is applied.
    late = nova_event("srv-late", "power_off", "stopped", T0)
    with kombu.Connection(amqp_url(bus_settings)) as conn:
        conn.Producer().publish(json.dumps(late).encode(), exchange=kombu.Exchange("nova", type="topic", durable=True),
                                routing_key=KEY, content_type="application/json")  # fmt: skip
    wait_for(lambda: bus_store.timers_for("server", "srv-late"))
