"""Build notifications for policy tests: a server in a state at a time, an allocation event."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from reclaim import routes
from reclaim.wire import Notification
from tests.support.samples import nova_sample, on_the_wire

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
SERVER = "178b0921-8f85-4257-88b6-2e743b5a975c"

_SAMPLE_FOR_STATE = {
    "stopped": "instance-power_off-end.json",
    "suspended": "instance-suspend-end.json",
    "shelved": "instance-shelve-end.json",
    "shelved_offloaded": "instance-shelve_offload-end.json",
    "active": "instance-power_on-end.json",
    "paused": "instance-pause-end.json",
    "deleted": "instance-delete-end.json",
}


def oslo_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def server_body(
    state: str, at: datetime, server: str = SERVER, metadata: dict[str, str] | None = None
) -> dict[str, Any]:
    """The versioned Nova notification that leaves ``server`` in ``state`` at ``at``."""
    body = on_the_wire(
        nova_sample(_SAMPLE_FOR_STATE[state]),
        oslo_time(at),
        message_id=f"{server}-{at.isoformat()}",
    )
    data = body["payload"]["nova_object.data"]
    data["uuid"] = server
    if metadata is not None:
        data["metadata"] = metadata
    return body


def server_event(state: str, at: datetime, **kw: Any) -> Notification[Any]:
    n = routes.parse(server_body(state, at, **kw))
    assert n is not None
    return n


def event(
    event_type: str, payload: dict[str, Any], at: datetime, priority: str = "INFO"
) -> Notification[Any]:
    n = routes.parse(
        {"message_id": f"m-{event_type}-{at.isoformat()}", "publisher_id": "test", "event_type": event_type,
         "priority": priority, "timestamp": oslo_time(at), "payload": json.loads(json.dumps(payload))}
    )  # fmt: skip
    assert n is not None
    return n


def days(n: float) -> timedelta:
    return timedelta(days=n)
