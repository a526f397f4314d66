"""``reclaim listen``: an oslo.messaging batch notification listener feeding the pipeline.

Targets, priorities and the anchored event-type filter come from the route table. The
listener has its own pool, hence its own queue (oslo names a pool's queue after the pool and
binds it to ``<topic>.<priority>`` on every target exchange), so it never competes with
Ceilometer for ``notifications.info``.

A batch is acknowledged only after :meth:`Pipeline.process` returns (dead letters recorded,
commands stored). When the store fails the endpoint returns ``REQUEUE``: oslo's batch
dispatcher then requeues every message of that priority in the batch (``allow_requeue``
must be set, or it acknowledges them instead).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from reclaim.bus import guard
from reclaim.bus.log import emit
from reclaim.bus.metrics import Metrics
from reclaim.bus.pipeline import Observer, Pipeline, envelope_of
from reclaim.bus.settings import BusSettings
from reclaim.bus.targets import Subscription, subscription
from reclaim.bus.transport import BusError, notification_transport, prepare
from reclaim.deadletters import DeadLetterStore
from reclaim.oslo import messaging
from reclaim.settings import IngestSettings, PolicySettings
from reclaim.signals import Service
from reclaim.store import StoreError
from reclaim.store.dynamodb import DynamoTimerStore


class BatchEndpoint:
    """oslo batch endpoint: one method per priority reclaim subscribes to."""

    def __init__(self, pipeline: Pipeline, subscription: Subscription, retry_delay: float) -> None:
        om = messaging()
        self.pipeline = pipeline
        self.retry_delay = retry_delay
        self.filter_rule = om.NotificationFilter(event_type=subscription.event_type_pattern)
        self._failures = 0
        for priority in subscription.priorities:
            setattr(self, priority, self._for(priority))

    def _for(self, priority: str) -> Any:
        def handle(messages: Sequence[Mapping[str, Any]]) -> str | None:
            return self.handle(priority, messages)

        return handle

    def handle(self, priority: str, messages: Sequence[Mapping[str, Any]]) -> str | None:
        """Process a batch; ``REQUEUE`` if the store failed (nothing is acknowledged then)."""
        om = messaging()
        bodies = [envelope_of(m, priority) for m in messages]
        started = time.perf_counter()
        try:
            outcome = self.pipeline.process(bodies)
        except StoreError as exc:
            self._failures += 1
            self.pipeline.metrics.requeued.inc(len(bodies))
            emit("store_unavailable", logging.ERROR, requeued=len(bodies), error=str(exc)[:300])
            # Slow the redelivery loop down while the store is away.
            time.sleep(min(self.retry_delay * self._failures, 10 * max(self.retry_delay, 0.1)))
            return str(om.NotificationResult.REQUEUE)
        except Exception as exc:  # a bug: keep the messages, say so loudly
            self.pipeline.metrics.requeued.inc(len(bodies))
            emit("batch_failed", logging.ERROR, requeued=len(bodies), error=repr(exc)[:300])
            time.sleep(self.retry_delay)
            return str(om.NotificationResult.REQUEUE)
        self._failures = 0
        for letter in outcome.dead_letters:
            emit("dead_letter", logging.WARNING, id=letter.id, stage=letter.stage,
                 reason=letter.reason, event_type=letter.event_type, message_id=letter.message_id)  # fmt: skip
        emit(
            "batch", priority=priority, received=outcome.received, applied=outcome.applied,
            ignored=outcome.ignored, dead_lettered=len(outcome.dead_letters),
            commands=outcome.commands, written=outcome.result.written,
            unchanged=outcome.result.unchanged, ms=round((time.perf_counter() - started) * 1000, 1),
        )  # fmt: skip
        return str(om.NotificationResult.HANDLED)


class Listener(Service):
    """The bus runtime: start, run until told to stop (:meth:`Service.run`), stop cleanly."""

    def __init__(
        self,
        settings: BusSettings,
        store: DynamoTimerStore,
        policy: PolicySettings,
        *,
        metrics: Metrics | None = None,
        observer: Observer | None = None,
        ingest: IngestSettings | None = None,
        clock: Callable[[], datetime] | None = None,
        stop_grace: float | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.stop_grace = stop_grace
        self.store = store
        self.metrics = metrics or Metrics()
        self.subscription = subscription(exchanges=settings.exchanges)
        self.deadletters = DeadLetterStore.beside(store)
        self.pipeline = Pipeline(
            store, self.deadletters, policy, apply_threads=settings.apply_threads,
            handler_retries=settings.handler_retries, metrics=self.metrics, observer=observer,
            ingest=ingest, clock=clock,
        )  # fmt: skip
        self._sink: guard.DeadLetterSink | None = None
        self._server: Any = None
        self._transport: Any = None
        self._metrics_server: Any = None

    def start(self, stop: threading.Event | None = None) -> Listener:
        """Wait for the broker, check durability, declare the queue and start consuming.

        While the broker is unreachable this waits on ``stop`` (default: the one
        :meth:`request_stop` sets) and returns without consuming once it is set.
        """
        om = messaging()
        s = self.settings
        exchanges = dict.fromkeys(e for e, _ in self.subscription.targets)
        if not prepare(s, stop or self._stop, exchanges, [s.pool]):
            return self
        self._transport = notification_transport(s)
        targets = [om.Target(exchange=e, topic=t) for e, t in self.subscription.targets]
        endpoint = BatchEndpoint(self.pipeline, self.subscription, s.store_retry_delay)
        self._sink = guard.DeadLetterSink(
            self.deadletters,
            self.metrics,
            self.subscription.event_type_pattern,
            s.store_retry_delay,
            max_body=self.pipeline.ingest.max_body,
        )
        guard.install(s.pool, self._sink)
        self._server = om.get_batch_notification_listener(
            self._transport, targets, [endpoint], executor="threading", allow_requeue=True,
            pool=s.pool, batch_size=s.batch_size, batch_timeout=s.batch_timeout,
        )  # fmt: skip
        try:
            self._server.start(override_pool_size=s.executor_threads)
        except om.MessageDeliveryFailure as exc:
            raise BusError(str(exc)) from exc
        if s.metrics_port:
            self._metrics_server = self.metrics.serve(s.metrics_port, s.metrics_host)
        emit("listening", pool=s.pool, targets=[f"{e}/{t}" for e, t in self.subscription.targets],
             priorities=list(self.subscription.priorities), durable=s.durable_queues,
             metrics=f"{s.metrics_host}:{s.metrics_port}" if s.metrics_port else None)  # fmt: skip
        return self

    def stop(self) -> None:
        """Stop consuming, finish the batches in flight, acknowledge them, disconnect."""
        if self._server is None:
            return
        started = time.monotonic()
        self._server.stop()
        if self._sink is not None:
            self._sink.drain()
        self._server.wait()
        guard.uninstall(self.settings.pool)
        self._transport.cleanup()
        self.pipeline.close()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
        self._server = None
        emit("stopped", seconds=round(time.monotonic() - started, 2),
             applied=int(self.metrics.value("reclaim_bus_applied_total")))  # fmt: skip
