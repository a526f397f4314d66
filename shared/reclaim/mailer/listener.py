"""``reclaim mailer``: an oslo.messaging notification listener on the notices topic.

It reads the queues ``reclaim_notices.info`` and ``reclaim_notices.warn`` on the ``openstack``
exchange, which oslo's notifier declares with the sweeper's first notice (with a ``pool``, a
queue of that name bound to both, durable as ``bus.durable_queues``). Notices are handled one at a time;
a notice is acknowledged only when all its mails were accepted (or were already sent). On a
failure the endpoint pauses ``retry_delay`` and returns ``REQUEUE``.

With ``digest`` on, a thread checks every ``digest_check`` seconds whether a digest slot
has come that was not mailed yet (always at start, so a restart finishes an interrupted
pass) and runs :meth:`Mailer.send_digests`.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from reclaim.bus.log import emit
from reclaim.bus.settings import BusSettings
from reclaim.bus.transport import notification_transport, prepare
from reclaim.mailer.consumer import Mailer, Retry
from reclaim.mailer.digest import slot
from reclaim.notices import EVENT_PREFIX, NOTICE_EXCHANGE, NOTICE_TOPIC
from reclaim.oslo import messaging
from reclaim.settings import MailerSettings
from reclaim.signals import Service

PRIORITIES = ("audit", "debug", "info", "warn", "error", "critical", "sample")


#: How long the consumer waits for a notice before it looks again whether it must stop:
#: the bound on how long a stop waits for an idle consumer.
POLL_SECONDS = 0.25


class NoticeEndpoint:
    """oslo batch endpoint (batches of one): every priority goes to :meth:`Mailer.handle`.

    A batch listener, because its poll waits at most its ``batch_timeout``
    (:data:`POLL_SECONDS`); the plain listener's poll blocks in the broker connection up to
    5 s, and a stop waited for it.
    """

    def __init__(self, mailer: Mailer, retry_delay: float) -> None:
        om = messaging()
        self.mailer = mailer
        self.retry_delay = retry_delay
        self.filter_rule = om.NotificationFilter(event_type="^" + EVENT_PREFIX.replace(".", r"\."))
        self._failures = 0
        for priority in PRIORITIES:
            setattr(self, priority, self.handle_batch)

    def handle_batch(self, messages: list[dict[str, Any]]) -> str:
        """Each message in turn (one, at ``batch_size`` 1); ``REQUEUE`` if one failed."""
        om = messaging()
        results = [
            self.handle(m["ctxt"], m["publisher_id"], m["event_type"], m["payload"], m["metadata"])
            for m in messages
        ]
        requeue = str(om.NotificationResult.REQUEUE)
        return requeue if requeue in results else str(om.NotificationResult.HANDLED)

    def handle(
        self,
        ctxt: dict[str, Any],
        publisher_id: str,
        event_type: str,
        payload: dict[str, Any],
        metadata: dict[str, Any],
    ) -> str:
        """Mail the notice; ``REQUEUE`` (after a pause) if that failed."""
        om = messaging()
        try:
            self.mailer.handle(payload)
        except Exception as exc:
            self._failures += 1
            level = logging.WARNING if isinstance(exc, Retry) else logging.ERROR
            emit("notice_requeued", level, event_type=event_type, error=str(exc)[:300],
                 message_id=metadata.get("message_id"))  # fmt: skip
            time.sleep(min(self.retry_delay * self._failures, 6 * max(self.retry_delay, 0.1)))
            return str(om.NotificationResult.REQUEUE)
        self._failures = 0
        return str(om.NotificationResult.HANDLED)


def _idle_workers_look_up_often() -> None:
    """oslo's threading executor is a futurist pool whose idle workers wait for work 1 s at
    a time before they look whether to stop; a stop, and the exit (futurist joins them at
    exit), waited for each. Make that :data:`POLL_SECONDS` (one idle worker: a few wake-ups
    a second)."""
    from futurist import _thread

    _thread.ThreadWorker.MAX_IDLE_FOR = POLL_SECONDS  # type: ignore[assignment]


class MailerService(Service):
    """The mailer runtime: start, run until told to stop (:meth:`Service.run`), stop cleanly."""

    def __init__(
        self,
        settings: MailerSettings,
        mailer: Mailer,
        bus: BusSettings,
        *,
        digest_check: float = 60.0,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.mailer = mailer
        #: The broker and its durability; the mailer's ``prefetch`` replaces the bus one.
        self.bus = bus.model_copy(update={"prefetch": settings.prefetch})
        self.digest_check = digest_check
        self._server: Any = None
        self._transport: Any = None
        self._digest_stop = threading.Event()
        self._digest_thread: threading.Thread | None = None

    def _digest_loop(self) -> None:
        done = None
        while True:
            current = slot(self.mailer.clock(), self.settings.digest_hour)
            if current != done:
                try:
                    self.mailer.send_digests(current)
                    done = current
                except Exception as exc:  # retried at the next check
                    emit("digest_retry", logging.WARNING, error=str(exc)[:300])
            if self._digest_stop.wait(self.digest_check):
                return

    def start(self) -> MailerService:
        """Wait for the broker (until :meth:`request_stop`), check durability, consume."""
        om = messaging()
        _idle_workers_look_up_often()
        s = self.settings
        if not prepare(self.bus, self._stop, [NOTICE_EXCHANGE], [s.pool] if s.pool else []):
            return self
        self._transport = notification_transport(self.bus, control_exchange=NOTICE_EXCHANGE)
        target = om.Target(exchange=NOTICE_EXCHANGE, topic=NOTICE_TOPIC)
        self._server = om.get_batch_notification_listener(
            self._transport, [target], [NoticeEndpoint(self.mailer, s.retry_delay)],
            executor="threading", allow_requeue=True, pool=s.pool or None,
            batch_size=1, batch_timeout=POLL_SECONDS,
        )  # fmt: skip
        # one notice at a time: the ledger check and the send must not race a duplicate
        self._server.start(override_pool_size=1)
        if s.digest:
            self._digest_stop.clear()
            self._digest_thread = threading.Thread(
                target=self._digest_loop, name="reclaim-digest", daemon=True
            )
            self._digest_thread.start()
        emit("mailer_listening", pool=s.pool, exchange=NOTICE_EXCHANGE, topic=NOTICE_TOPIC,
             durable=self.bus.durable_queues, smtp=f"{s.smtp_host}:{s.smtp_port}")  # fmt: skip
        return self

    def stop(self) -> None:
        """Stop consuming, finish the notice in hand, disconnect."""
        if self._server is None:
            return
        started = time.monotonic()
        if self._digest_thread is not None:
            self._digest_stop.set()
            self._digest_thread.join()
            self._digest_thread = None
        self._server.stop()
        self._server.wait()
        self._transport.cleanup()
        self._server = None
        emit("mailer_stopped", seconds=round(time.monotonic() - started, 2))
