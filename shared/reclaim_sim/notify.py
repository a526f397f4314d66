"""Notifications the simulated services emit, published through oslo.messaging.

oslo's ``Notifier`` always stamps the envelope with the wall clock, and the simulation must
stamp it with the simulated clock. So :class:`OsloSink` builds the same message dict the
``Notifier`` builds (``message_id``, ``publisher_id``, ``event_type``, ``priority``,
``payload``, ``timestamp``) and hands it to the transport's notification driver with the
target the ``messaging``/``messagingv2`` driver would use (topic ``<topic>.<priority>``),
plus the service's exchange. The driver does the rest exactly as for a real service: the
``_context_*`` keys, ``_unique_id``, and for ``messagingv2`` the ``oslo.message`` envelope.
Setting the exchange on the target is what a per-service ``control_exchange`` does, so one
transport serves every exchange.
"""

from __future__ import annotations

import collections
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from reclaim_sim.clock import oslo_timestamp

Driver = Literal["messagingv2", "messaging"]


@dataclass(frozen=True)
class Notification:
    """One notification as a service would send it."""

    exchange: str
    topic: str
    publisher_id: str
    event_type: str
    payload: dict[str, Any]
    timestamp: datetime
    priority: str = "INFO"
    context: dict[str, Any] = field(default_factory=dict)
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def message(self) -> dict[str, Any]:
        """The inner oslo message dict (what ``Notifier._notify`` builds), without context."""
        return {
            "message_id": self.message_id,
            "publisher_id": self.publisher_id,
            "event_type": self.event_type,
            "priority": self.priority.upper(),
            "payload": self.payload,
            "timestamp": oslo_timestamp(self.timestamp),
        }

    def wire(self) -> dict[str, Any]:
        """The v1 flat body a consumer receives (message plus ``_context_*`` keys)."""
        body = self.message()
        body.update({f"_context_{k}": v for k, v in self.context.items()})
        return body


class Sink(Protocol):
    def send(self, notification: Notification) -> None: ...

    def close(self) -> None: ...


class RecordingSink:
    """Keeps the last ``maxlen`` notifications in memory, for tests and the request log."""

    def __init__(self, maxlen: int | None = 100_000) -> None:
        self._items: collections.deque[Notification] = collections.deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def send(self, notification: Notification) -> None:
        with self._lock:
            self._items.append(notification)

    def close(self) -> None:
        return None

    def all(self) -> list[Notification]:
        with self._lock:
            return list(self._items)

    def of_type(self, event_type: str) -> list[Notification]:
        return [n for n in self.all() if n.event_type == event_type]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class OsloSink:
    """Publishes through an oslo.messaging notification transport (RabbitMQ or in-memory)."""

    def __init__(self, url: str, *, driver: Driver = "messagingv2", retry: int | None = 0) -> None:
        from reclaim.oslo import messaging, transport

        self._om = messaging()
        self._transport = transport(url, notification=True)
        self._version = 2.0 if driver == "messagingv2" else 1.0
        self._retry = retry
        self.url = url
        self.driver = driver

    @property
    def transport(self) -> Any:
        return self._transport

    def send(self, notification: Notification) -> None:
        target = self._om.Target(
            exchange=notification.exchange,
            topic=f"{notification.topic}.{notification.priority.lower()}",
        )
        # The driver packs the context into the dict it is given, so each send gets a copy.
        self._transport._send_notification(
            target,
            dict(notification.context),
            notification.message(),
            version=self._version,
            retry=self._retry,
        )

    def close(self) -> None:
        self._transport.cleanup()


class Notifier:
    """Fans notifications out to sinks; with no sink it is off and callers skip the work."""

    def __init__(self, sinks: Iterable[Sink] = ()) -> None:
        self._sinks: list[Sink] = list(sinks)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self._sinks)

    def add_sink(self, sink: Sink) -> None:
        with self._lock:
            self._sinks.append(sink)

    def remove_sink(self, sink: Sink) -> None:
        with self._lock:
            self._sinks.remove(sink)

    def record(self, maxlen: int | None = 100_000) -> RecordingSink:
        """Add and return a :class:`RecordingSink`."""
        sink = RecordingSink(maxlen)
        self.add_sink(sink)
        return sink

    def emit(self, notifications: Iterable[Notification]) -> None:
        with self._lock:
            sinks = list(self._sinks)
        for n in notifications:
            for sink in sinks:
                sink.send(n)

    def close(self) -> None:
        with self._lock:
            sinks, self._sinks = self._sinks, []
        for sink in sinks:
            sink.close()
