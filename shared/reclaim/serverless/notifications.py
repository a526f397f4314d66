"""Notification batches from Lambda (Amazon MQ for RabbitMQ or SQS) through parse, policy, store.

Each record goes the way a message from the bus goes: :func:`reclaim.routes.parse`, then
:func:`reclaim.routes.decide`, then ``store.apply``. What differs is failure:

* A *poison* record (a body that cannot be parsed, a payload that does not validate, a
  policy handler that raises, a write the store rejects as invalid) fails the same way on
  every delivery. Retrying it would only block the records behind it.
* A *transient* failure (the store unreachable or throttling) may pass on the next delivery.

Amazon MQ event sources have no partial batch response: an error returns the whole batch.
So :func:`handle_mq` dead-letters poison records (durably, in the format the listener
writes and ``reclaim deadletters list|replay`` reads, see :mod:`reclaim.deadletters`) and
succeeds, and raises only on a transient store
error. The batch then comes back whole, which is safe: every timer write is conditional on
event time, so the records already applied change nothing the second time.

SQS event sources with ``ReportBatchItemFailures`` redeliver only the records the function
names, so :func:`handle_sqs` reports exactly those: each poison record, and on a transient
store error that record and every one after it (the store is likely down for them too).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from reclaim import routes
from reclaim.deadletters import DeadLetterSink, Stage, dead_letter
from reclaim.serverless.events import MQ_SOURCE, Record, event_source, mq_records, sqs_records
from reclaim.settings import IngestSettings, PolicySettings
from reclaim.store import StoreError
from reclaim.store.port import TimerStore
from reclaim.wire import Bounds, ParseError

log = logging.getLogger("reclaim.serverless")


def utcnow() -> datetime:
    """The current time, aware UTC (the one clock the adapters read)."""
    return datetime.now(UTC)


class Poison(Exception):
    """A record that can never be processed; ``problem`` says why, ``stage`` where."""

    def __init__(self, problem: str, stage: Stage = "parse", event_type: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.stage: Stage = stage
        self.event_type = event_type


@dataclass
class BatchResult:
    """What one invocation did with its batch."""

    received: int = 0
    applied: int = 0
    ignored: int = 0
    written: int = 0
    unchanged: int = 0
    dead_lettered: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The result as a JSON object (what ``handle_mq`` returns and the log shows)."""
        return {
            "received": self.received,
            "applied": self.applied,
            "ignored": self.ignored,
            "written": self.written,
            "unchanged": self.unchanged,
            "dead_lettered": list(self.dead_lettered),
            "failed": list(self.failed),
        }


def process(
    record: Record,
    policy: PolicySettings,
    store: TimerStore,
    result: BatchResult,
    bounds: Bounds | None = None,
) -> None:
    """Parse, decide and apply one record, counting into ``result``.

    ``bounds``: the record's size limit and event-time window (received when the batch was).
    Raises :class:`Poison` for a record that will never succeed and
    :class:`reclaim.store.StoreError` for a transient store failure.
    """
    if record.body is None:
        raise Poison(record.problem or "no body", "decode")
    try:
        notification = routes.parse(record.body, bounds)
    except ParseError as exc:
        raise Poison(f"unreadable notification: {exc}", event_type=exc.event_type) from exc
    if notification is None:
        result.ignored += 1
        return
    try:
        commands = routes.decide(notification, policy)
    except Exception as exc:  # pure code: whatever it raised, it raises on every delivery
        raise Poison(
            f"policy for {notification.event_type} failed: {type(exc).__name__}: {exc}",
            "handler",
            notification.event_type,
        ) from exc
    try:
        applied = store.apply(commands)
    except StoreError as exc:
        if exc.rejected:
            raise Poison(
                f"store rejected the timers of {notification.event_type}: {exc}",
                "store",
                notification.event_type,
            ) from exc
        raise
    result.applied += 1
    result.written += applied.written
    result.unchanged += applied.unchanged


def handle_mq(
    event: Mapping[str, Any],
    policy: PolicySettings,
    store: TimerStore,
    deadletters: DeadLetterSink,
    clock: Callable[[], datetime] = utcnow,
    ingest: IngestSettings | None = None,
) -> BatchResult:
    """Process an Amazon MQ for RabbitMQ batch; dead-letter poison records, raise on transient errors."""
    result = BatchResult()
    received_at = clock()
    bounds = (ingest or IngestSettings()).bounds(received_at)
    for record in mq_records(event):
        result.received += 1
        try:
            process(record, policy, store, result, bounds)
        except Poison as exc:
            # Kept before the batch is acknowledged; if this write fails the batch fails too.
            deadletters.keep(
                dead_letter(
                    record.evidence(),
                    stage=exc.stage,
                    reason=exc.problem,
                    source=record.source,
                    ref=record.ref,
                    message_id=record.message_id,
                    event_type=exc.event_type,
                    now=received_at,
                )
            )
            result.dead_lettered.append(record.ref)
            log.warning("dead-lettered %s: %s", record.ref, exc.problem)
    return result


def handle_sqs(
    event: Mapping[str, Any],
    policy: PolicySettings,
    store: TimerStore,
    clock: Callable[[], datetime] = utcnow,
    ingest: IngestSettings | None = None,
) -> BatchResult:
    """Process an SQS batch; ``result.failed`` names exactly the records to redeliver."""
    result = BatchResult()
    records = sqs_records(event)
    bounds = (ingest or IngestSettings()).bounds(clock())
    for index, record in enumerate(records):
        result.received += 1
        try:
            process(record, policy, store, result, bounds)
        except Poison as exc:
            result.failed.append(record.ref)
            log.warning("failed %s: %s", record.ref, exc.problem)
        except StoreError as exc:
            rest = [r.ref for r in records[index:]]
            result.failed.extend(rest)
            result.received = len(records)
            log.error("store unavailable, returning %d records: %s", len(rest), exc)
            break
    return result


def sqs_response(result: BatchResult) -> dict[str, Any]:
    """The partial batch response Lambda reads when ``ReportBatchItemFailures`` is on."""
    return {"batchItemFailures": [{"itemIdentifier": ref} for ref in result.failed]}


def handle(
    event: Mapping[str, Any],
    policy: PolicySettings,
    store: TimerStore,
    deadletters: DeadLetterSink,
    clock: Callable[[], datetime] = utcnow,
    ingest: IngestSettings | None = None,
) -> dict[str, Any]:
    """Process either kind of batch; return what Lambda expects back from that source.

    The batch is received when this is called (``clock``): records whose dates lie outside
    ``ingest``'s event-time window, or larger than its ``max_body``, are poison.
    """
    if event_source(event) == MQ_SOURCE:
        result = handle_mq(event, policy, store, deadletters, clock, ingest)
        log.info("batch: %s", result.as_json())
        return result.as_json()
    result = handle_sqs(event, policy, store, clock, ingest)
    log.info("batch: %s", result.as_json())
    return sqs_response(result)
