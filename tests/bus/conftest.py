"""Fixtures of the bus tests: a private RabbitMQ vhost, a dynalite table, running listeners."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reclaim.bus.listener import Listener
from reclaim.bus.settings import BusSettings
from reclaim.settings import PolicySettings
from reclaim.store import DynamoTimerStore, open_store
from tests.conftest import CONFORMANCE
from tests.support.dynalite import Dynalite
from tests.support.waiting import wait_for as wait_for  # the bus tests import it from here

RABBIT = "127.0.0.1:5672"


def rabbitmqctl(*args: str, check: bool = True, timeout: float = 60) -> str:
    """Run ``rabbitmqctl`` and return its output."""
    out = subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and out.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout


@pytest.fixture(scope="session")
def vhost() -> Iterator[str]:
    """A RabbitMQ vhost of its own for this run (deleted at the end, queues and all)."""
    name = f"reclaim-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    try:
        rabbitmqctl("await_startup", timeout=30)
    except (RuntimeError, FileNotFoundError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"RabbitMQ is not available: {exc}")
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    yield name
    rabbitmqctl("delete_vhost", name, check=False)


@pytest.fixture
def fresh_vhost(vhost: str) -> Iterator[str]:
    """A vhost of one test's own, for what the run's shared (durable) vhost cannot show:
    exchanges that do not exist yet, or exist non-durable as an oslo-default cloud makes them."""
    name = f"{vhost}-{uuid.uuid4().hex[:6]}"
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    yield name
    rabbitmqctl("delete_vhost", name, check=False)


@pytest.fixture
def bus_settings(vhost: str) -> BusSettings:
    """Settings for one test: its own pool (queue) on the run's vhost, no metrics server.

    Durable, as a cloud with ``amqp_durable_queues = true``: the broker-restart test needs
    queues that survive it, and every test on the shared vhost must declare alike.
    """
    return BusSettings(
        transport_url=f"rabbit://guest:guest@{RABBIT}/{vhost}",
        durable_queues=True,
        pool=f"reclaim-{uuid.uuid4().hex[:8]}",
        metrics_port=0,
        batch_timeout=0.05,
        store_retry_delay=0.2,
    )


_tables = iter(range(1_000_000))


@pytest.fixture
def bus_store(dynalite: Dynalite) -> DynamoTimerStore:
    """A fresh timer table on the session's dynalite."""
    return open_store(f"{dynalite.url}/bus-{os.getpid()}-{next(_tables)}")


@pytest.fixture
def policy() -> PolicySettings:
    return PolicySettings()


@pytest.fixture
def run_listener(
    bus_settings: BusSettings, bus_store: DynamoTimerStore, policy: PolicySettings
) -> Iterator[Callable[..., Listener]]:
    """Start in-process listeners (settings overridable); stopped and their queue deleted after."""
    started: list[Listener] = []

    def start(store: DynamoTimerStore | None = None, **overrides: Any) -> Listener:
        settings = bus_settings.model_copy(update=overrides)
        listener = Listener(settings, store or bus_store, policy).start()
        started.append(listener)
        return listener

    yield start
    for listener in started:
        listener.stop()
    delete_queue(bus_settings)


def delete_queue(settings: BusSettings) -> None:
    """Delete a test's pool queue (kombu, no management plugin needed)."""
    import kombu

    with kombu.Connection(amqp_url(settings)) as conn:
        channel = conn.channel()
        with contextlib.suppress(Exception):
            channel.queue_delete(settings.pool)


def amqp_url(settings: BusSettings) -> str:
    """The kombu URL of the settings' vhost."""
    return settings.transport_url.replace("rabbit://", "amqp://", 1)


def queue_depth(settings: BusSettings) -> int:
    """Messages ready in the test's pool queue."""
    import kombu

    with kombu.Connection(amqp_url(settings)) as conn:
        channel = conn.channel()
        _, count, _ = channel.queue_declare(settings.pool, passive=True)
        return int(count)


# -- sample events --------------------------------------------------------------------
_T0 = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)


def oslo_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def conformance_samples() -> list[dict[str, Any]]:
    """Nova's versioned samples (resolved), with the message_id/timestamp oslo adds."""
    out = []
    for i, path in enumerate(sorted((CONFORMANCE / "nova" / "resolved").glob("*.json"))):
        body = json.loads(path.read_text())
        body["message_id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, path.name))
        body["timestamp"] = oslo_time(_T0 + timedelta(minutes=i))
        out.append(body)
    return out


def nova_event(
    server: str, action: str, state: str, at: datetime, project: str = "p1"
) -> dict[str, Any]:
    """A versioned ``instance.<action>.end`` for ``server`` in ``state`` at ``at``."""
    body: dict[str, Any] = json.loads(
        (CONFORMANCE / "nova" / "resolved" / "instance-power_off-end.json").read_text()
    )
    data = body["payload"]["nova_object.data"]
    data.update({"uuid": server, "state": state, "tenant_id": project, "task_state": None})
    body["event_type"] = f"instance.{action}.end"
    body["message_id"] = str(uuid.uuid4())
    body["timestamp"] = oslo_time(at)
    return body


def keystone_event(
    event_type: str, resource: str, at: datetime, cadf: bool = True
) -> dict[str, Any]:
    """A Keystone identity notification (CADF or basic)."""
    payload: dict[str, Any] = {"resource_info": resource}
    if cadf:
        payload.update({
            "typeURI": "http://schemas.dmtf.org/cloud/audit/1.0/event",
            "eventType": "activity", "action": f"deleted.{event_type.split('.')[1]}",
            "outcome": "success", "eventTime": at.isoformat(),
            "target": {"id": resource, "typeURI": "data/security/project"},
            "initiator": {"id": "admin-user", "typeURI": "service/security/account/user"},
            "observer": {"id": "openstack", "typeURI": "service/security"},
        })  # fmt: skip
    return {
        "message_id": str(uuid.uuid4()), "publisher_id": "identity.keystone-1",
        "event_type": event_type, "priority": "INFO", "timestamp": oslo_time(at),
        "payload": payload,
    }  # fmt: skip


def glance_event(event_type: str, image: str, owner: str, at: datetime) -> dict[str, Any]:
    """A Glance image notification."""
    return {
        "message_id": str(uuid.uuid4()), "publisher_id": "image.localhost",
        "event_type": event_type, "priority": "INFO", "timestamp": oslo_time(at),
        "payload": {
            "id": image, "name": "community-ubuntu", "owner": owner, "visibility": "community",
            "status": "deleted" if event_type == "image.delete" else "active",
            "protected": False, "properties": {}, "tags": [], "updated_at": at.isoformat(),
            "deleted": event_type == "image.delete",
            "deleted_at": at.isoformat() if event_type == "image.delete" else None,
        },
    }  # fmt: skip


def table_snapshot(store: DynamoTimerStore) -> dict[tuple[str, str], dict[str, Any]]:
    """Every timer in the table by (pk, rule) (dead letters excluded), without write counters."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    kwargs: dict[str, Any] = {"TableName": store.table}
    while True:
        page = store.client.scan(**kwargs)
        for item in page.get("Items", []):
            if item["pk"]["S"] == "deadletter":
                continue
            for doc in json.loads(item["doc"]["S"]):  # a resource's timers, one per rule
                out[(item["pk"]["S"], doc["rule"])] = _comparable(doc)
        if "LastEvaluatedKey" not in page:
            return out
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def expected_snapshot(
    bodies: list[Any], policy: PolicySettings, *, via_store: bool = False
) -> dict[tuple[str, str], dict[str, Any]]:
    """The table the in-order stream makes: each body applied alone, in order.

    By default folds with :func:`reclaim.timers.fold_resource` in memory, as ``store.apply`` does
    (fast); ``via_store`` applies to a moto table instead (the reference, slow).
    """
    from reclaim import routes
    from reclaim.timers import Timer, fold_resource

    if via_store:
        ref = open_store(f"memory://expected-{uuid.uuid4().hex[:8]}")
        for body in bodies:
            ref.apply(routes.commands_for(body, policy))
        return table_snapshot(ref)
    resources: dict[str, tuple[dict[str, Timer], datetime | None]] = {}
    for body in bodies:
        by_resource: dict[str, list[Any]] = {}
        for c in routes.commands_for(body, policy):
            by_resource.setdefault(f"{c.resource_type}#{c.resource_id}", []).append(c)
        for pk, cmds in by_resource.items():
            timers, closed_all, _, _ = fold_resource(*resources.get(pk, ({}, None)), cmds)
            resources[pk] = (timers, closed_all)
    return {
        (pk, rule): _comparable(json.loads(timer.model_dump_json()))
        for pk, (timers, _) in resources.items()
        for rule, timer in timers.items()
    }


def _comparable(doc: dict[str, Any]) -> dict[str, Any]:
    doc.pop("version", None)
    if doc.get("state") != "pending":
        # A closed timer keeps the derived fields of its last run (since, due_at,
        # notices) when it had one: history, not evidence. Compare the evidence.
        for key in ("since", "due_at", "notices", "attempts", "spec_at", "spec_key"):
            doc.pop(key, None)
    return doc


EVENTS_ROOT = Path(__file__).resolve().parents[2] / "events"
