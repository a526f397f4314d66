"""Poison messages are recorded with their reason, then acknowledged; operators list and replay them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import kombu
import pytest

from reclaim.bus.metrics import Metrics
from reclaim.bus.pipeline import Pipeline
from reclaim.bus.replay import replay
from reclaim.bus.settings import BusSettings
from reclaim.deadletters import DeadLetterStore, dead_letter
from reclaim.settings import PolicySettings
from reclaim.store import DynamoTimerStore
from tests.bus.conftest import amqp_url, nova_event, oslo_time, queue_depth, wait_for

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def publish_raw(settings: BusSettings, items: list[tuple[str, str, bytes, str]]) -> None:
    """Publish raw bodies with kombu: (exchange, routing key, body, content type)."""
    with kombu.Connection(amqp_url(settings)) as conn:
        producer = conn.Producer()
        for exchange, key, body, ctype in items:
            ex = kombu.Exchange(exchange, type="topic", durable=settings.durable_queues)
            producer.publish(body, exchange=ex, routing_key=key, content_type=ctype,
                             content_encoding="utf-8" if ctype == "application/json" else "binary",
                             declare=[ex], delivery_mode=2)  # fmt: skip


def v2(body: dict[str, Any]) -> bytes:
    return json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(body)}).encode()


@pytest.mark.rabbitmq
@pytest.mark.dynalite
def test_poison_messages_are_dead_lettered_with_reasons_and_good_ones_applied(
    run_listener: Any, bus_settings: BusSettings, bus_store: DynamoTimerStore,
) -> None:  # fmt: skip
    listener = run_listener()
    good = nova_event("srv-good", "power_off", "stopped", T0)
    bad_payload = nova_event("srv-bad", "power_off", "stopped", T0)
    bad_payload["payload"] = {"nova_object.data": {"uuid": "srv-bad"}}  # no state, no project
    bad_time = nova_event("srv-bad2", "power_off", "stopped", T0)
    bad_time["timestamp"] = "yesterday"
    key = "versioned_notifications.info"
    items = [
        ("nova", key, b"\xff\xfe not json at all", "application/octet-stream"),
        ("nova", key, b"{truncated json", "application/json"),
        ("nova", key, b"[1, 2, 3]", "application/json"),
        ("nova", key, b"[" * 5000 + b"]" * 5000, "application/json"),
        ("nova", key, json.dumps({"oslo.version": "2.0", "oslo.message": "{nope"}).encode(), "application/json"),
        ("nova", key, v2({**good, "priority": 7, "message_id": "m-prio"}), "application/json"),
        ("nova", key, v2({**good, "event_type": ["x"], "message_id": "m-et"}), "application/json"),
        ("nova", key, v2(bad_payload), "application/json"),
        ("nova", key, v2(bad_time), "application/json"),
        ("nova", key, v2(good), "application/json"),
    ]  # fmt: skip
    publish_raw(bus_settings, items)
    letters_store = DeadLetterStore.beside(bus_store)
    letters = wait_for(lambda: len(ls := letters_store.list()) == 9 and ls)
    wait_for(lambda: bus_store.timers_for("server", "srv-good"))
    by_stage = {s: [lt for lt in letters if lt.stage == s] for s in ("decode", "parse")}
    assert len(by_stage["decode"]) == 7 and len(by_stage["parse"]) == 2
    reasons = " | ".join(lt.reason for lt in letters)
    for fragment in ("undecodable", "decodes to list", "nested too deeply", "priority", "event_type",
                     "payload", "timestamp"):  # fmt: skip
        assert fragment in reasons, (fragment, reasons)
    assert all(lt.reason for lt in letters)
    raw = {lt.raw() for lt in letters if lt.stage == "decode"}
    assert b"\xff\xfe not json at all" in raw  # the very bytes received, for the operator
    assert {lt.routing_key for lt in by_stage["decode"]} == {key}
    # Nothing loops: every delivery was acknowledged.
    wait_for(lambda: queue_depth(bus_settings) == 0)
    assert listener.metrics.value("reclaim_bus_dead_lettered_total", stage="decode") == 7
    assert listener.metrics.value("reclaim_bus_dead_lettered_total", stage="parse") == 2
    assert listener.metrics.value("reclaim_bus_requeued_total") == 0


def test_a_failing_handler_is_retried_then_dead_lettered_and_replayable(
    moto_store: DynamoTimerStore,
) -> None:
    calls: list[str] = []

    def flaky(notification: Any, policy: PolicySettings) -> Any:
        calls.append(notification.message_id)
        raise RuntimeError("bug in handler")

    letters = DeadLetterStore.beside(moto_store)
    pipeline = Pipeline(moto_store, letters, PolicySettings(), handler_retries=2, decide=flaky,
                        metrics=Metrics())  # fmt: skip
    body = nova_event("srv-h", "power_off", "stopped", T0)
    outcome = pipeline.process([body])
    assert len(calls) == 3  # one try and two retries
    [letter] = letters.list()
    assert letter.stage == "handler"
    assert "RuntimeError: bug in handler (after 3 attempts)" in letter.reason
    assert moto_store.timers_for("server", "srv-h") == []
    assert outcome.dead_letters == [
        letter.model_copy(update={"received_at": outcome.dead_letters[0].received_at})
    ]
    # The handler is fixed (the real one): replay applies it and closes the letter.
    results = replay(moto_store, PolicySettings())
    assert results == [{"id": letter.id, "outcome": "replayed", "commands": results[0]["commands"]}]
    assert [t.rule for t in moto_store.timers_for("server", "srv-h")] == [
        "delete-shelved",
        "shelve",
    ]
    assert letters.list() == []
    assert [lt.state for lt in letters.list(include_replayed=True)] == ["replayed"]


def test_replay_keeps_a_letter_that_still_fails_with_its_new_reason(
    moto_store: DynamoTimerStore,
) -> None:
    letters = DeadLetterStore.beside(moto_store)
    letters.record([dead_letter(b"\xff garbage", stage="decode", reason="undecodable body")])
    [result] = replay(moto_store, PolicySettings())
    assert result["outcome"] == "failed" and "not UTF-8" in result["reason"]
    [kept] = letters.list()
    assert kept.state == "open" and kept.attempts == 2 and "not UTF-8" in kept.reason


def test_a_redelivered_poison_message_is_one_record(moto_store: DynamoTimerStore) -> None:
    letters = DeadLetterStore.beside(moto_store)
    body = b"\x01\x02 same bytes twice"
    letters.record([dead_letter(body, stage="decode", reason="r1")])
    letters.record([dead_letter(body, stage="decode", reason="r1")])
    assert len(letters.list()) == 1


def test_a_huge_body_is_kept_in_part_and_not_replayed(moto_store: DynamoTimerStore) -> None:
    letters = DeadLetterStore.beside(moto_store)
    huge = json.dumps({"event_type": "x", "payload": "a" * 2_000_000}).encode()
    letters.record([dead_letter(huge, stage="decode", reason="too big")])
    [kept] = letters.list()
    assert kept.truncated and kept.body_size == len(huge) and len(kept.raw()) < 200_000
    [result] = replay(moto_store, PolicySettings())
    assert result["outcome"] == "truncated"


def test_dead_letters_stay_out_of_the_timer_views(moto_store: DynamoTimerStore) -> None:
    DeadLetterStore.beside(moto_store).record(
        [dead_letter({"event_type": "x", "timestamp": oslo_time(T0)}, stage="parse", reason="r")]
    )
    moto_store.apply([])
    assert list(moto_store.pending()) == []
    assert list(moto_store.pending(T0 + timedelta(days=10_000))) == []
