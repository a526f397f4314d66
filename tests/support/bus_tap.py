"""A tap on reclaim's bus: a queue of a test's own that receives every notice and operator
alert reclaim publishes (exchange ``openstack``, topics ``reclaim_notices.*``), to see what
it said.

A debugging view, not a consumer. Nothing of reclaim reads a tap (the mailer reads the
notice topic's own queues, ``reclaim_notices.info`` and ``.warn``, or ``mailer.pool``), and
a tap keeps only what was published while it existed. So it is non-durable, and the broker
deletes it once it went unused (no read) for ``expires``: :meth:`BusTap.close` deletes it,
and one a killed test run left behind does not fill up with every later notice. It is
read with ``basic.get`` on a connection per read, so neither ``auto_delete`` (never
triggers without a consumer) nor ``exclusive`` (one connection) would remove it.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import kombu

#: How long a tap may go unread before the broker deletes it: longer than any pause of a
#: test between two reads (a sweep of a real cloud), short enough not to pile up.
EXPIRES = timedelta(hours=2)


class BusTap:
    """What reclaim puts on the bus at ``transport_url``, read from a queue of its own."""

    def __init__(self, transport_url: str, expires: timedelta = EXPIRES) -> None:
        exchange = kombu.Exchange("openstack", type="topic", durable=False)
        self.queue = kombu.Queue(
            f"tap-{uuid.uuid4().hex[:8]}",
            exchange=exchange,
            bindings=[
                kombu.binding(exchange, routing_key=f"reclaim_notices.{p}")
                for p in ("info", "warn", "error")
            ],
            durable=False,
            auto_delete=False,
            queue_arguments={"x-expires": int(expires.total_seconds() * 1000)},
        )
        self.url = transport_url.replace("rabbit:", "amqp:", 1)
        with kombu.Connection(self.url) as conn:
            self.queue(conn.channel()).declare()
        self.seen: list[dict[str, Any]] = []

    def payloads(self) -> list[dict[str, Any]]:
        """Every notice and alert so far (their payloads), in order. (A connection per
        read: the broker drops one left idle for minutes between sweeps.)"""
        with kombu.Connection(self.url) as conn:
            conn.ensure_connection(max_retries=60, interval_start=1, interval_max=5)
            queue = self.queue(conn.channel())
            # basic.get: each call answers at once, a message or none (a consumer's first
            # delivery can take longer than any short wait on a loaded machine)
            while (message := queue.get(no_ack=True)) is not None:
                body = message.payload
                inner = json.loads(body["oslo.message"]) if "oslo.message" in body else body
                self.seen.append(dict(inner["payload"]))
        return list(self.seen)

    def kinds(self, resource_id: str) -> list[str]:
        """The kinds of notice and alert that named ``resource_id``, in order."""
        return [p["kind"] for p in self.payloads() if p.get("resource_id") == resource_id]

    def close(self) -> None:
        with kombu.Connection(self.url) as conn:
            self.queue(conn.channel()).delete()
