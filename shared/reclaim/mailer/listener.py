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
import signal
import threading
import time
from types import FrameType
from typing import Any

from reclaim.bus.log import emit
from reclaim.bus.settings import BusSettings
from reclaim.bus.transport import notification_transport, prepare
from reclaim.mailer.consumer import Mailer, Retry
from reclaim.mailer.digest import slot
from reclaim.notices import EVENT_PREFIX, NOTICE_EXCHANGE, NOTICE_TOPIC
from reclaim.oslo import messaging
from reclaim.settings import MailerSettings

PRIORITIES = ("audit", "debug", "info", "warn", "error", "critical", "sample")


class NoticeEndpoint:
    """oslo endpoint: every priority goes to :meth:`Mailer.handle`."""

    def __init__(self, mailer: Mailer, retry_delay: float) -> None:
        om = messaging()
        self.mailer = mailer
        self.retry_delay = retry_delay
        self.filter_rule = om.NotificationFilter(event_type="^" + EVENT_PREFIX.replace(".", r"\."))
        self._failures = 0
        for priority in PRIORITIES:
            setattr(self, priority, self.handle)

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


class MailerService:
    """The mailer runtime: start, run until told to stop, stop cleanly."""

    def __init__(
        self,
        settings: MailerSettings,
        mailer: Mailer,
        bus: BusSettings,
        *,
        digest_check: float = 60.0,
    ) -> None:
        self.settings = settings
        self.mailer = mailer
        #: The broker and its durability; the mailer's ``prefetch`` replaces the bus one.
        self.bus = bus.model_copy(update={"prefetch": settings.prefetch})
        self.digest_check = digest_check
        self._server: Any = None
        self._transport: Any = None
        self._stop = threading.Event()
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
        s = self.settings
        if not prepare(self.bus, self._stop, [NOTICE_EXCHANGE], [s.pool] if s.pool else []):
            return self
        self._transport = notification_transport(self.bus, control_exchange=NOTICE_EXCHANGE)
        target = om.Target(exchange=NOTICE_EXCHANGE, topic=NOTICE_TOPIC)
        self._server = om.get_notification_listener(
            self._transport, [target], [NoticeEndpoint(self.mailer, s.retry_delay)],
            executor="threading", allow_requeue=True, pool=s.pool or None,
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
        if self._server is None:
            return
        if self._digest_thread is not None:
            self._digest_stop.set()
            self._digest_thread.join()
            self._digest_thread = None
        self._server.stop()
        self._server.wait()
        self._transport.cleanup()
        self._server = None
        emit("mailer_stopped")

    def request_stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        self._stop.set()

    def run(self) -> None:
        """Start, serve until SIGTERM or SIGINT, then stop cleanly."""
        previous = {
            sig: signal.signal(sig, self.request_stop) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            self.start()
            while not self._stop.wait(1.0):
                pass
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
