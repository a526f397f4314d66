"""Events really lost by RabbitMQ while the listener is down, then a reconcile repairs the store.

The simulated cloud publishes its notifications on the test's vhost; a real listener stores
them on dynalite. Between two listener runs the pool's queue is deleted (a broker restart
does that to a non-durable queue, an operator deleting it does the same), so nothing the
cloud publishes meanwhile is routed to reclaim: the broker only fills the ``<topic>.<priority>``
queues oslo's notifier declares for Ceilometer. A reconcile against the cloud's API then
makes the store what the uninterrupted stream would have made it.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reclaim.bus.listener import Listener
from reclaim.bus.settings import BusSettings
from reclaim.deadletters import DeadLetterStore
from reclaim.reconcile.engine import reconcile
from reclaim.settings import PolicySettings
from reclaim.store import DynamoTimerStore, open_store
from reclaim_sim import Cloud, Ctx, RecordingSink, SimClock, SimConfig, SimServer
from reclaim_sim.notify import Notification as SimNotification
from tests.bus.conftest import RABBIT, amqp_url, delete_queue, rabbitmqctl, wait_for
from tests.reconcile.conftest import MOVES, deliver, mark_reconciled, pending

pytestmark = [pytest.mark.rabbitmq, pytest.mark.dynalite]

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def bus_settings(vhost: str) -> Iterator[BusSettings]:
    """The bus tests' settings on a vhost of this test's own: the simulated cloud declares
    its exchanges non-durable, and the other bus tests' listeners (durable queues) have
    declared them durable on the run's shared vhost, which RabbitMQ then refuses."""
    own = f"{vhost}-lost-{uuid.uuid4().hex[:6]}"
    rabbitmqctl("add_vhost", own)
    rabbitmqctl("set_permissions", "-p", own, "guest", ".*", ".*", ".*")
    yield BusSettings(
        transport_url=f"rabbit://guest:guest@{RABBIT}/{own}",
        pool=f"reclaim-{uuid.uuid4().hex[:8]}",
        metrics_port=0,
        batch_timeout=0.05,
        store_retry_delay=0.2,
        durable_queues=False,
    )
    rabbitmqctl("delete_vhost", own, check=False)


@pytest.fixture
def cloud_on_bus(bus_settings: BusSettings) -> Iterator[tuple[SimServer, RecordingSink]]:
    """A simulated cloud over HTTP publishing versioned Nova notifications on the test's
    vhost, and recording them all."""
    cloud = Cloud(
        clock=SimClock(START),
        config=SimConfig(notification_format="versioned", notify_on_state_change="vm_state"),
    )
    recorder = cloud.record_notifications()
    cloud.connect_transport(bus_settings.transport_url)
    with SimServer(cloud) as server:
        yield server, recorder
    cloud.close()


class History:
    """Random changes to the servers of a few projects, the simulated clock moving between."""

    def __init__(self, cloud: Cloud, rng: random.Random, projects: int = 3) -> None:
        self.cloud = cloud
        self.rng = rng
        self.projects: list[tuple[str, str, str]] = []  # (project, user, image)
        for _ in range(projects):
            n = uuid.uuid4().hex[:6]
            p = cloud.identity.create_project(f"lost-{n}")
            u = cloud.identity.create_user(f"lost-user-{n}", email=f"lost-{n}@example.org")
            cloud.identity.grant(u.id, p.id, "member")
            img = cloud.image.create_image(
                owner=p.id, name=f"img-{n}", visibility="private", status="active"
            )
            self.projects.append((p.id, u.id, img.id))
        self.booted = 0

    def boot(self) -> str:
        project, user, image = self.projects[self.booted % len(self.projects)]
        self.booted += 1
        return self.cloud.compute.create_server(
            project_id=project, user_id=user, name=f"vm-{self.booted}", image_id=image
        ).id

    def tick(self, max_seconds: int) -> None:
        self.cloud.clock.advance(
            timedelta(
                seconds=self.rng.randint(1, max_seconds),
                microseconds=self.rng.randint(0, 999_999),
            )
        )

    def change(self, steps: int, delete_rate: float, keep: int) -> tuple[int, int]:
        """``steps`` random moves (deletes at ``delete_rate``, booting back up to ``keep``
        servers); returns (deleted, booted)."""
        compute = self.cloud.compute
        deleted = booted = 0
        for _ in range(steps):
            sid = self.rng.choice(list(compute.servers))  # boot order: the seed decides
            server = compute.servers[sid]
            moves = [a for a in MOVES[server.vm_state] if a != "delete"]
            action = "delete" if self.rng.random() < delete_rate else self.rng.choice(moves)
            self.tick(86400)
            ctx = Ctx(user_id=server.user_id, project_id=server.project_id, roles=("member",))
            if action == "delete":
                compute.delete(ctx, sid)
                deleted += 1
                while len(compute.servers) < keep:
                    self.tick(3600)
                    self.boot()
                    booted += 1
            else:
                compute.action(ctx, sid, action)
        return deleted, booted


def deliverable(listener: Listener, notifications: Sequence[SimNotification]) -> int:
    """How many of ``notifications`` the listener's queue is bound to receive."""
    sub = listener.subscription
    return sum(
        1
        for n in notifications
        if (n.exchange, n.topic) in sub.targets and n.priority.lower() in sub.priorities
    )


def settled(listener: Listener) -> float:
    """Messages the listener has finished with: stored, ignored or dead-lettered."""
    m = listener.metrics
    done = m.value("reclaim_bus_applied_total") + m.value("reclaim_bus_ignored_total")
    for stage in ("parse", "handler", "decode"):
        done += m.value("reclaim_bus_dead_lettered_total", stage=stage)
    return done


def queue_exists(settings: BusSettings) -> bool:
    """Whether the pool's queue is declared on the broker."""
    import kombu

    with kombu.Connection(amqp_url(settings)) as conn:
        try:
            conn.channel().queue_declare(settings.pool, passive=True)
        except conn.channel_errors:  # 404 NOT_FOUND closes the channel
            return False
        return True


def close(got: Any, expected: Any) -> bool:
    """Pending timers ``(action, due_at, notices)`` alike: same action and number of notices,
    due up to a second later (Nova reports ``updated`` in whole seconds), never earlier."""
    (action, due, notices), (e_action, e_due, e_notices) = got, expected
    return bool(
        action == e_action
        and timedelta(0) <= due - e_due < timedelta(seconds=1)
        and len(notices) == len(e_notices)
    )


def in_order(notifications: Sequence[SimNotification]) -> dict[tuple[str, str, str], Any]:
    """The pending timers the notifications make when applied alone, in order (moto)."""
    store = open_store(f"memory://lost-events-{uuid.uuid4().hex[:8]}")
    deliver(store, notifications)
    return pending(store)


def wait_until_applied(
    listener: Listener, expected: int, store: DynamoTimerStore, timers: dict[Any, Any]
) -> None:
    """Wait until ``listener`` has settled ``expected`` messages and the store's pending
    timers are ``timers``."""
    wait_for(lambda: settled(listener) >= expected, timeout=90, every=0.2)
    wait_for(lambda: pending(store) == timers, timeout=30, every=0.5)
    assert listener.metrics.value("reclaim_bus_received_total") == expected


def test_events_lost_by_the_broker_are_repaired_by_a_reconcile(
    cloud_on_bus: tuple[SimServer, RecordingSink],
    run_listener: Callable[..., Listener],
    bus_settings: BusSettings,
    bus_store: DynamoTimerStore,
    policy: PolicySettings,
) -> None:
    """50 servers in 3 projects change while a real listener runs; the listener stops and its
    queue goes, and the changes made meanwhile are lost by RabbitMQ; a new listener takes the
    rest. A reconcile then makes the dynalite store's pending timers those of the whole
    stream, to within the second Nova reports ``updated`` in, and never earlier."""
    sim_server, recorder = cloud_on_bus
    cloud = sim_server.cloud
    rng = random.Random(8)

    # Phase 1: the listener is up while servers boot and change. Its queue is not durable,
    # as the simulated cloud's exchanges are not: a broker restart would delete it.
    first = run_listener()
    history = History(cloud, rng)
    for _ in range(50):
        history.tick(600)
        history.boot()
    history.change(120, delete_rate=0.0, keep=50)
    phase1 = recorder.all()
    wait_until_applied(first, deliverable(first, phase1), bus_store, in_order(phase1))

    # Phase 2: the listener is down and its queue is gone; the broker drops these events.
    first.stop()
    delete_queue(bus_settings)
    assert not queue_exists(bus_settings)
    deleted, booted = history.change(150, delete_rate=0.15, keep=45)
    assert deleted and booted
    phase2 = recorder.all()[len(phase1) :]
    assert not queue_exists(bus_settings)  # nothing was kept for the pool
    assert first.metrics.value("reclaim_bus_received_total") == deliverable(first, phase1)

    # Phase 3: a new listener (same pool, so it declares the queue again) takes the rest.
    second = run_listener()
    assert queue_exists(bus_settings)
    history.change(40, delete_rate=0.0, keep=0)
    everything = recorder.all()
    phase3 = everything[len(phase1) + len(phase2) :]
    wait_until_applied(second, deliverable(second, phase3), bus_store, in_order(phase1 + phase3))
    # Only phase 3 ever reached the new listener: the events of phase 2 were lost.
    assert deliverable(second, phase2) > 100
    assert DeadLetterStore.beside(bus_store).list() == []

    # What an uninterrupted listener would have stored: every event, in order.
    expected = in_order(everything)
    before = pending(bus_store)
    missing, stale = expected.keys() - before.keys(), before.keys() - expected.keys()
    assert missing and stale  # the lost events did lose and leave timers
    moved = {k for k in expected.keys() & before.keys() if not close(before[k], expected[k])}

    admin_conn = sim_server.connect()
    now = cloud.clock.now() + timedelta(minutes=5)
    # A running installation (reconciled before), not a new one: no first-install grace.
    mark_reconciled(bus_store, at=now - timedelta(days=1))
    report = reconcile(admin_conn, bus_store, policy, now)

    got = pending(bus_store)
    assert got.keys() == expected.keys()
    for key, timer in expected.items():
        assert close(got[key], timer), (key, got[key], timer)
    assert report.count("create") == len(missing)
    assert report.count("cancel") == len(stale)
    assert report.count("move") == len(moved)
    assert report.written == report.drift == len(missing) + len(stale) + len(moved)
    assert report.servers == len(cloud.compute.servers)

    # A second reconcile of the repaired store finds nothing to change, and writes nothing.
    again = reconcile(admin_conn, bus_store, policy, now + timedelta(hours=1))
    assert (again.drift, again.written) == (0, 0)
