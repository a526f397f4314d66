"""Notices from Lambda: the ``messagingv2`` notification oslo would send, published with kombu.

oslo.messaging stays out of the Lambda layer (its oslo.service/eventlet pins have no wheels
for Lambda's python3.11), so :class:`reclaim.sweeper.notices.OsloNotices` cannot run there.
:class:`AmqpNotices` puts the same bytes on the same broker instead: the inner message is
:func:`reclaim.sweeper.notices.oslo_message` (one schema, :class:`NoticeMessage`), wrapped as
``{"oslo.version": "2.0", "oslo.message": "<json>"}``, sent to the topic exchange
``openstack`` with routing key ``reclaim_notices.<priority>``. Like oslo's rabbit driver it
declares the queue named after the routing key, bound to it, so notices published before any
consumer exists wait there (the mailer reads them); a publish the broker did not take raises,
so the sweeper retries the notice on its next pass instead of losing it.

kombu, amqp and vine are pure Python and go into the layer (see
:data:`reclaim.serverless.build.LAYER_EXTRAS`).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from reclaim.notices.schema import NOTICE_EXCHANGE, NOTICE_TOPIC, NoticeMessage
from reclaim.sweeper.notices import oslo_message

#: oslo.messaging's transport URL schemes and kombu's names for them.
_SCHEMES = {"rabbit": "amqp", "kombu": "amqp", "amqp": "amqp", "amqps": "amqps", "pyamqp": "amqp"}


#: oslo's in-process transport schemes: kombu's in-memory broker (local runs, tests).
_IN_PROCESS = frozenset({"kombu+memory", "memory"})


def kombu_url(url: str) -> str:
    """An AMQP URL kombu accepts, from an oslo transport URL (``rabbit://u:p@host:5672/vh``). Pure.

    Several hosts (``rabbit://u:p@h1,u:p@h2/``) become kombu's failover list (``;``);
    ``kombu+memory:////`` becomes kombu's in-process broker ``memory://``.
    """
    parts = urlsplit(url)
    if parts.scheme in _IN_PROCESS:
        return "memory://"
    scheme = _SCHEMES.get(parts.scheme)
    if scheme is None:
        raise ValueError(
            f"{parts.scheme}:// is not an AMQP URL (use rabbit://, amqp:// or amqps://)"
        )
    hosts = parts.netloc.split(",")
    return ";".join(
        urlunsplit((scheme, host, parts.path or "/", parts.query, "")) for host in hosts
    )


def routing_key(message: NoticeMessage, topic: str = NOTICE_TOPIC) -> str:
    """``<topic>.<priority>`` as oslo's notifier routes it (``reclaim_notices.info``). Pure."""
    return f"{topic}.{message.priority.lower()}"


def envelope(message: NoticeMessage, publisher_id: str, now: datetime) -> dict[str, Any]:
    """The AMQP body a ``messagingv2`` notifier sends for ``message``. Pure."""
    inner = oslo_message(message, publisher_id, now)
    # oslo adds a per-send id; the notice's own id stays in message_id for de-duplication.
    inner["_unique_id"] = uuid.uuid5(
        uuid.NAMESPACE_URL, inner["message_id"] + inner["timestamp"]
    ).hex
    return {"oslo.version": "2.0", "oslo.message": json.dumps(inner)}


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AmqpNotices:
    """Publishes notices on a RabbitMQ broker as oslo's ``messagingv2`` notifier would.

    The connection is made on the first notice (a sweep with nothing to say never connects)
    and kept for the execution environment. ``durable`` is ``bus.durable_queues``: it must
    match how the exchange already exists on the broker (oslo's ``amqp_durable_queues``).
    """

    def __init__(
        self,
        url: str,
        *,
        exchange: str = NOTICE_EXCHANGE,
        topic: str = NOTICE_TOPIC,
        publisher_id: str = "reclaim.sweeper",
        durable: bool,
        retries: int = 3,
        connect_timeout: float = 5.0,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.url = kombu_url(url)
        self.exchange_name = exchange
        self.topic = topic
        self.publisher_id = publisher_id
        self.durable = durable
        self.retries = retries
        self.connect_timeout = connect_timeout
        self.clock = clock
        self._connection: Any = None
        self._producer: Any = None
        self._declared: set[str] = set()

    @staticmethod
    def _kombu() -> Any:
        import kombu

        return kombu

    def _exchange(self) -> Any:
        return self._kombu().Exchange(self.exchange_name, type="topic", durable=self.durable)

    def _ensure(self) -> Any:
        if self._producer is None:
            kombu = self._kombu()
            self._connection = kombu.Connection(self.url, connect_timeout=self.connect_timeout)
            self._producer = kombu.Producer(self._connection)
            self._declared.clear()
        return self._producer

    def publish(self, message: NoticeMessage) -> None:
        """Send one notice; raise if the broker did not take it."""
        key = routing_key(message, self.topic)
        body = envelope(message, self.publisher_id, self.clock())
        producer = self._ensure()
        exchange = self._exchange()
        declare: list[Any] = []
        if key not in self._declared:
            # oslo's default queue: notices wait there until a consumer binds its own.
            declare = [self._kombu().Queue(key, exchange, routing_key=key, durable=self.durable)]
        try:
            producer.publish(
                body,
                exchange=exchange,
                routing_key=key,
                serializer="json",
                delivery_mode=2,
                declare=declare,
                retry=True,
                retry_policy={"max_retries": self.retries, "interval_start": 0.5},
            )
        except Exception:
            self.close()  # a fresh connection for the next notice
            raise
        self._declared.add(key)

    def close(self) -> None:
        """Drop the connection (the next notice opens a new one)."""
        connection, self._connection, self._producer = self._connection, None, None
        if connection is not None:
            # Closing a broken connection may fail too; there is nothing left to keep.
            with contextlib.suppress(Exception):
                connection.release()
