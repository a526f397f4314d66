"""The listener on the real RabbitMQ and a real dynalite: what it stores, and what it keeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reclaim.bus.publisher import Publisher
from reclaim.bus.settings import BusSettings
from reclaim.deadletters import DeadLetterStore
from reclaim.settings import PolicySettings
from reclaim.store import DynamoTimerStore
from tests.bus.conftest import (
    conformance_samples,
    expected_snapshot,
    glance_event,
    keystone_event,
    nova_event,
    rabbitmqctl,
    table_snapshot,
    wait_for,
)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _publish(settings: BusSettings, bodies: list[Any], driver: str = "messagingv2") -> None:
    publisher = Publisher(settings.model_copy(update={"driver": driver}))
    try:
        for body in bodies:
            publisher.publish(body)
    finally:
        publisher.close()


@pytest.mark.rabbitmq
@pytest.mark.dynalite
@pytest.mark.parametrize("driver", ["messaging", "messagingv2"])
def test_published_samples_become_the_in_order_timers(
    driver: str, run_listener: Any, bus_settings: BusSettings, bus_store: DynamoTimerStore,
    policy: PolicySettings,
) -> None:  # fmt: skip
    listener = run_listener()
    later = T0 + timedelta(hours=1)
    bodies = [
        *conformance_samples(),
        keystone_event("identity.project.deleted", "proj-gone", later),
        keystone_event("identity.user.deleted", "user-gone", later, cadf=False),
        glance_event("image.create", "img-1", "proj-gone", later),
        glance_event("image.delete", "img-1", "proj-gone", later + timedelta(minutes=1)),
    ]
    expected = expected_snapshot(bodies, policy)
    assert any(k[0].startswith("server#") for k in expected)
    assert any(k[0] == "project#proj-gone" for k in expected)
    _publish(bus_settings, bodies, driver)
    wait_for(lambda: table_snapshot(bus_store) == expected, timeout=30)
    wait_for(lambda: listener.metrics.value("reclaim_bus_received_total") == len(bodies))
    assert DeadLetterStore.beside(bus_store).list() == []


@pytest.mark.rabbitmq
@pytest.mark.dynalite
def test_events_of_one_resource_in_one_batch_collapse_to_the_in_order_result(
    run_listener: Any, bus_settings: BusSettings, bus_store: DynamoTimerStore,
    policy: PolicySettings,
) -> None:  # fmt: skip
    # Publish first, then listen: the whole stream arrives as one batch.
    stream = []
    for n in range(20):
        at = T0 + timedelta(minutes=n)
        stream += [
            nova_event("srv-a", "power_off", "stopped", at),
            nova_event("srv-a", "power_on", "active", at + timedelta(seconds=20)),
            nova_event("srv-b", "power_off", "stopped", at),
        ]
    stream += [nova_event("srv-a", "power_off", "stopped", T0 + timedelta(hours=2))]
    listener = run_listener(batch_size=500, batch_timeout=1.0)
    listener.stop()  # the queue now exists; messages wait in it
    _publish(bus_settings, stream)
    listener = run_listener(batch_size=500, batch_timeout=1.0)
    expected = expected_snapshot(stream, policy)
    wait_for(lambda: table_snapshot(bus_store) == expected, timeout=30)
    wait_for(lambda: listener.metrics.value("reclaim_bus_applied_total") == len(stream))
    # Two servers, one rule each: a handful of writes, not one per event.
    assert listener.metrics.value("reclaim_bus_timer_writes_total") <= 8


@pytest.mark.rabbitmq
@pytest.mark.dynalite
def test_allocation_events_schedule_and_cancel_the_project_cleanup(
    run_listener: Any, bus_settings: BusSettings, bus_store: DynamoTimerStore,
) -> None:  # fmt: skip
    from reclaim.bus.publisher import allocation_event

    run_listener()
    _publish(bus_settings, [allocation_event("ended", "proj-x", end_date="2026-01-31")])

    def cleanup() -> Any:
        return [t for t in bus_store.timers_for("project", "proj-x") if t.rule == "project-cleanup"]

    timer = wait_for(cleanup)[0]
    assert timer.state == "pending"
    assert timer.due_at == datetime(2026, 1, 31, tzinfo=UTC) + timedelta(days=180)
    _publish(bus_settings, [allocation_event("renewed", "proj-x")])
    wait_for(lambda: cleanup()[0].state == "cancelled")


def test_the_in_memory_oracle_agrees_with_the_store(policy: PolicySettings) -> None:
    from tests.bus.test_runtime import stream

    bodies = [*conformance_samples(), *stream(120, servers=15)]
    bodies.append(keystone_event("identity.project.deleted", "p1", T0 + timedelta(days=1)))
    fast = expected_snapshot(bodies, policy)
    assert len(fast) > 20
    assert fast == expected_snapshot(bodies, policy, via_store=True)


@pytest.mark.rabbitmq
def test_a_cloud_with_non_durable_exchanges_is_refused_before_anything_is_declared(
    bus_settings: BusSettings, moto_store: DynamoTimerStore
) -> None:
    """Nova declared its exchange non-durable (oslo's default) and reclaim is set durable:
    a clear error naming the setting, and nothing declared that would later refuse the
    cloud's own services; with the cloud's setting it starts."""
    import kombu

    from reclaim.bus.listener import Listener
    from reclaim.bus.transport import BusError

    own = f"{bus_settings.transport_url.rsplit('/', 1)[1]}-nd"
    rabbitmqctl("add_vhost", own)
    try:
        rabbitmqctl("set_permissions", "-p", own, "guest", ".*", ".*", ".*")
        url = f"{bus_settings.transport_url.rsplit('/', 1)[0]}/{own}"
        with kombu.Connection(url.replace("rabbit://", "amqp://", 1)) as conn:
            kombu.Exchange("nova", type="topic", durable=False)(conn.default_channel).declare()
        settings = bus_settings.model_copy(update={"transport_url": url})
        listener = Listener(settings, moto_store, PolicySettings())
        with pytest.raises(BusError, match=r"exchange 'nova' non-durable: set bus\.durable_queues"):
            listener.start()
        listener.stop()
        assert settings.pool not in rabbitmqctl("list_queues", "-p", own, "name").split()
        assert "neutron" not in rabbitmqctl("list_exchanges", "-p", own, "name").split()
        matched = Listener(
            settings.model_copy(update={"durable_queues": False}), moto_store, PolicySettings()
        ).start()
        matched.stop()
        # A queue left by a durable run is named, with what deleting it costs.
        durable_queue = settings.model_copy(update={"pool": "left-durable"})
        with kombu.Connection(url.replace("rabbit://", "amqp://", 1)) as conn:
            conn.default_channel.queue_declare("left-durable", durable=True, auto_delete=False)
        with pytest.raises(BusError, match=r"queue 'left-durable' durable.*reconcile"):
            Listener(
                durable_queue.model_copy(update={"durable_queues": False}),
                moto_store,
                PolicySettings(),
            ).start()
    finally:
        rabbitmqctl("delete_vhost", own, check=False)
