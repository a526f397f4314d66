"""Publish notifications on the bus the way an OpenStack service's oslo notifier does.

A service's notifier sends to its ``control_exchange`` with routing key
``<topic>.<priority>``; ``driver = messaging`` sends the flat (v1) body, ``messagingv2``
wraps it in ``{"oslo.version": "2.0", "oslo.message": "<json>"}``. This goes through the
same transport call the notifier drivers make, so the sample's ``message_id`` and
``timestamp`` are kept (a notifier would stamp new ones).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from reclaim.bus.settings import BusSettings
from reclaim.bus.transport import notification_transport
from reclaim.oslo import messaging
from reclaim.routes import route_for
from reclaim.wire import ParseError

OSLO_TIME = "%Y-%m-%d %H:%M:%S.%f"


def oslo_now() -> str:
    """Now, as oslo stamps notifications (naive UTC)."""
    return datetime.now(UTC).strftime(OSLO_TIME)


def destination(body: Mapping[str, Any], exchange: str | None = None) -> tuple[str, str, str]:
    """(exchange, topic, priority) a body is published to: its route's, unless overridden. Pure."""
    event_type = body.get("event_type")
    route = route_for(event_type) if isinstance(event_type, str) else None
    priority = str(body.get("priority") or "INFO").lower()
    topic = route.topic if route else "notifications"
    return (exchange or (route.exchange if route else "openstack")), topic, priority


def normalise(body: Any) -> dict[str, Any]:
    """A sample as a full flat message: envelope unwrapped, ``message_id``/``timestamp`` added.

    Raises :class:`ParseError` when the body is not a notification at all.
    """
    if not isinstance(body, Mapping):
        raise ParseError(f"expected a JSON object, got {type(body).__name__}")
    message = dict(body)
    if "oslo.message" in message:
        inner = message["oslo.message"]
        try:
            message = json.loads(inner) if isinstance(inner, str | bytes) else inner
        except ValueError as exc:
            raise ParseError(f"not JSON ({exc})", "oslo.message") from exc
        if not isinstance(message, dict):
            raise ParseError("expected a JSON object", "oslo.message")
    for key in ("event_type", "payload"):
        if key not in message:
            raise ParseError(f"missing {key}", "envelope")
    message.setdefault("message_id", str(uuid.uuid4()))
    message.setdefault("timestamp", oslo_now())
    message.setdefault("priority", "INFO")
    message.setdefault("publisher_id", "reclaim.publish")
    message["priority"] = str(message["priority"]).upper()
    return message


class Publisher:
    """Sends notifications through oslo.messaging transports (one per exchange)."""

    def __init__(self, settings: BusSettings, *, retry: int | None = 3) -> None:
        """``retry``: connection attempts per message (None: keep trying while the broker is away)."""
        self.settings = settings
        self.retry = retry
        self.version = 2.0 if settings.driver == "messagingv2" else 1.0
        self._transports: dict[str, Any] = {}

    def _transport(self, exchange: str) -> Any:
        if exchange not in self._transports:
            self._transports[exchange] = notification_transport(
                self.settings, control_exchange=exchange
            )
        return self._transports[exchange]

    def publish(self, body: Any, *, exchange: str | None = None) -> tuple[str, str]:
        """Send one notification; returns (exchange, routing key)."""
        om = messaging()
        message = normalise(body)
        ex, topic, priority = destination(message, exchange)
        context = {
            k[len("_context_") :]: message.pop(k)
            for k in list(message)
            if k.startswith("_context_")
        }
        target = om.Target(topic=f"{topic}.{priority}")
        self._transport(ex)._send_notification(
            target, context, message, version=self.version, retry=self.retry
        )
        return ex, f"{topic}.{priority}"

    def close(self) -> None:
        """Close every transport."""
        for t in self._transports.values():
            t.cleanup()
        self._transports.clear()


def allocation_event(
    kind: str,
    project_id: str,
    *,
    end_date: str | None = None,
    allocation_id: str | None = None,
    now: str | None = None,
) -> dict[str, Any]:
    """An ``allocation.ended``/``allocation.renewed`` notification body. Pure given ``now``."""
    payload: dict[str, Any] = {"project_id": project_id}
    if allocation_id:
        payload["allocation_id"] = allocation_id
    if end_date:
        payload["end_date"] = end_date
    return {
        "message_id": str(uuid.uuid4()),
        "publisher_id": "reclaim.allocation",
        "event_type": f"allocation.{kind}",
        "priority": "INFO",
        "timestamp": now or oslo_now(),
        "payload": payload,
    }
