"""Notices from Lambda: oslo's messagingv2 wire format, published with kombu on a real broker."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from reclaim.notices import NoticeMessage, parse_notice
from reclaim.serverless.notices import AmqpNotices, envelope, kombu_url, routing_key
from reclaim.sweeper.notices import operator_alert
from reclaim.wire import read_envelope

BROKER = "rabbit://guest:guest@127.0.0.1:5672/"
NOW = datetime(2026, 3, 15, 10, 0, 0, 123456, tzinfo=UTC)
OWNER = NoticeMessage(
    kind="shelve_upcoming",
    resource_type="server",
    resource_id="srv-1",
    project_id="proj-1",
    user_id="user-1",
    action="shelve",
    due_at=datetime(2026, 3, 22, tzinfo=UTC),
    detail={"name": "vm-1"},
    dedupe_key="server#srv-1|shelve|shelve_upcoming|2026-03-15",
)
ALERT = operator_alert("sweep_cap_reached", None, "100 destructive actions this sweep")


def test_envelope_is_what_a_messagingv2_notifier_sends() -> None:
    body = envelope(OWNER, "reclaim.sweeper", NOW)
    assert set(body) == {"oslo.version", "oslo.message"} and body["oslo.version"] == "2.0"
    assert isinstance(body["oslo.message"], str)
    parsed = read_envelope(json.dumps(body))
    assert (parsed.event_type, parsed.priority, parsed.publisher_id) == (
        "reclaim.notice.shelve_upcoming", "INFO", "reclaim.sweeper",
    )  # fmt: skip
    assert parsed.message_id == OWNER.notice_id, "a repeat is recognisable on the bus"
    assert parsed.timestamp == NOW.replace(tzinfo=None) or parsed.timestamp == NOW
    assert json.loads(body["oslo.message"])["timestamp"] == "2026-03-15 10:00:00.123456"
    assert parse_notice(parsed.payload) == OWNER
    assert parsed.payload == OWNER.model_dump(mode="json")


def test_routing_keys_and_urls() -> None:
    assert routing_key(OWNER) == "reclaim_notices.info"
    assert routing_key(ALERT) == "reclaim_notices.warn"
    assert kombu_url("rabbit://u:p@mq.example.org:5671/reclaim") == (
        "amqp://u:p@mq.example.org:5671/reclaim"
    )
    assert kombu_url("amqps://u:p@b-1.mq.amazonaws.com:5671") == (
        "amqps://u:p@b-1.mq.amazonaws.com:5671/"
    )
    assert (
        kombu_url("rabbit://u:p@h1:5672,u:p@h2:5672/") == "amqp://u:p@h1:5672/;amqp://u:p@h2:5672/"
    )
    with pytest.raises(ValueError, match="not an AMQP URL"):
        kombu_url("kafka://broker:9092")


@pytest.fixture
def names() -> Iterator[tuple[str, str]]:
    """A fresh exchange and topic on the real broker, deleted afterwards."""
    import kombu

    exchange, topic = f"reclaim-test-{uuid.uuid4().hex[:8]}", f"notices_{uuid.uuid4().hex[:8]}"
    yield exchange, topic
    with kombu.Connection(kombu_url(BROKER)) as conn:
        channel = conn.channel()
        for queue in (f"{topic}.info", f"{topic}.warn"):
            channel.queue_delete(queue)
        channel.exchange_delete(exchange)


def _drain(queue: str) -> list[Any]:
    import kombu

    out = []
    with kombu.Connection(kombu_url(BROKER)) as conn:
        channel = conn.channel()
        while (message := channel.basic_get(queue, no_ack=True)) is not None:
            out.append((message.body, message.delivery_info["routing_key"],
                        message.properties.get("content_type")))  # fmt: skip
    return out


@pytest.mark.rabbitmq
def test_notices_wait_on_the_broker_in_oslo_form(names: tuple[str, str]) -> None:
    exchange, topic = names
    notices = AmqpNotices(BROKER, exchange=exchange, topic=topic, durable=False)
    try:
        notices.publish(OWNER)
        notices.publish(ALERT)
        notices.publish(OWNER)  # at-least-once: the repeat carries the same message_id
    finally:
        notices.close()
    # Published before any consumer: oslo's default queues (named by routing key) kept them.
    info, warn = _drain(f"{topic}.info"), _drain(f"{topic}.warn")
    assert [key for _, key, _ in info] == [f"{topic}.info"] * 2
    assert [key for _, key, _ in warn] == [f"{topic}.warn"]
    assert {ctype for _, _, ctype in info + warn} == {"application/json"}
    owner = [read_envelope(body) for body, _, _ in info]
    assert {e.message_id for e in owner} == {OWNER.notice_id}
    assert all(e.event_type == "reclaim.notice.shelve_upcoming" for e in owner)
    assert parse_notice(owner[0].payload) == OWNER
    (alert,) = [read_envelope(body) for body, _, _ in warn]
    assert alert.priority == "WARN" and parse_notice(alert.payload) == ALERT


@pytest.mark.rabbitmq
def test_an_unreachable_broker_raises_so_the_notice_is_retried() -> None:
    notices = AmqpNotices(
        "rabbit://guest:guest@127.0.0.1:1/", durable=False, retries=0, connect_timeout=0.5
    )
    with pytest.raises(Exception):  # noqa: B017 - kombu raises the socket error it got
        notices.publish(OWNER)
