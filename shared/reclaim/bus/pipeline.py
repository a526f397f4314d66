"""One batch of notifications through parse, policy and store; dead letters for the rest.

The listener acknowledges a batch only when :meth:`Pipeline.process` returns: by then the
batch's dead letters are recorded and its timer commands stored. If the store fails it
raises :class:`StoreError` and the batch is requeued; applying it again later changes
nothing that was already applied (timer merges are idempotent).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from reclaim import routes
from reclaim.bus.log import emit
from reclaim.bus.metrics import Metrics
from reclaim.commands import TimerCommand
from reclaim.deadletters import DeadLetter, DeadLetterStore, Stage, dead_letter
from reclaim.settings import IngestSettings, PolicySettings
from reclaim.store import StoreError
from reclaim.store.port import ApplyResult, TimerStore
from reclaim.wire import Notification, ParseError

#: A body as the listener hands it over (decoded), or as read from a file or record (bytes).
Body = Mapping[str, Any] | bytes | str

#: Keys oslo adds to a notification's context that are not the publisher's.
_OSLO_CONTEXT_KEYS = frozenset({"msg_id", "reply_q", "client_timeout"})

#: Called with the event times of a stored batch and the moment it was stored.
Observer = Callable[[Sequence[datetime], datetime], None]


def envelope_of(message: Mapping[str, Any], priority: str) -> dict[str, Any]:
    """Rebuild the oslo v1 body from what a notification endpoint receives. Pure.

    oslo hands endpoints ``{ctxt, publisher_id, event_type, payload, metadata}`` with the
    priority implied by the endpoint method; ``routes.parse`` reads the wire form.
    """
    metadata = message.get("metadata")
    meta = metadata if isinstance(metadata, Mapping) else {}
    ctxt = message.get("ctxt")
    context = ctxt if isinstance(ctxt, Mapping) else {}
    body: dict[str, Any] = {
        "message_id": meta.get("message_id"),
        "publisher_id": message.get("publisher_id"),
        "event_type": message.get("event_type"),
        "priority": priority.upper(),
        "timestamp": meta.get("timestamp"),
        "payload": message.get("payload"),
    }
    for key, value in context.items():
        if key not in _OSLO_CONTEXT_KEYS or value is not None:
            body[f"_context_{key}"] = value
    return body


@dataclass
class BatchOutcome:
    """What one batch did."""

    received: int = 0
    applied: int = 0
    ignored: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)
    #: The position in the batch of each dead letter's body.
    dead_letter_positions: list[int] = field(default_factory=list)
    #: The commands each applied body decided, by its position in the batch.
    decided: list[tuple[int, list[TimerCommand]]] = field(default_factory=list)
    commands: int = 0
    result: ApplyResult = field(default_factory=ApplyResult)


class Pipeline:
    """Parse, decide and store batches of notifications; thread-safe."""

    def __init__(
        self,
        store: TimerStore,
        deadletters: DeadLetterStore,
        policy: PolicySettings,
        *,
        apply_threads: int = 8,
        handler_retries: int = 2,
        metrics: Metrics | None = None,
        observer: Observer | None = None,
        decide: Callable[[Notification[Any], PolicySettings], list[TimerCommand]] = routes.decide,
        ingest: IngestSettings | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        self.deadletters = deadletters
        self.policy = policy
        self.apply_threads = apply_threads
        self.handler_retries = handler_retries
        self.metrics = metrics or Metrics()
        self.observer = observer
        self._decide = decide
        self.ingest = ingest or IngestSettings()
        #: The receipt clock: a batch's events are received when it is sorted.
        self.clock = clock or _utcnow
        self._writers = ThreadPoolExecutor(apply_threads, thread_name_prefix="reclaim-apply")

    def close(self) -> None:
        """Stop the store writers (after the last batch)."""
        self._writers.shutdown(wait=True)

    # -- pure-ish steps -------------------------------------------------------------
    def _decide_with_retries(self, notification: Notification[Any]) -> list[TimerCommand]:
        attempts = self.handler_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                return self._decide(notification, self.policy)
            except Exception as exc:
                if attempt == attempts:
                    raise HandlerFailed(
                        f"{type(exc).__name__}: {exc} (after {attempts} attempts)"
                    ) from exc
                emit("handler_retry", logging.WARNING, message_id=notification.message_id,
                     event_type=notification.event_type, attempt=attempt, error=repr(exc)[:300])  # fmt: skip
                time.sleep(0.05 * attempt)
        raise AssertionError("unreachable")

    def sort(
        self, bodies: Sequence[Body]
    ) -> tuple[list[TimerCommand], list[datetime], BatchOutcome]:
        """Parse and decide every body; collect commands, event times and dead letters.

        The batch is received now (the pipeline's clock): a body whose dates lie outside
        the event-time window (``ingest``) is dead-lettered with the reason.
        """
        outcome = BatchOutcome(received=len(bodies))
        commands: list[TimerCommand] = []
        times: list[datetime] = []
        received_at = self.clock()
        bounds = self.ingest.bounds(received_at)

        def reject(
            position: int, body: Body, stage: Stage, reason: str, read: ParseError | None = None
        ) -> None:
            letter = dead_letter(
                body,
                stage=stage,
                reason=reason,
                now=received_at,
                event_type=read.event_type if read else None,
                message_id=read.message_id if read else None,
            )
            outcome.dead_letters.append(letter)
            outcome.dead_letter_positions.append(position)

        for position, body in enumerate(bodies):
            try:
                notification = routes.parse(body, bounds)
            except ParseError as exc:
                reject(position, body, "parse", str(exc), exc)
                continue
            except Exception as exc:  # pydantic or json internals on hostile input
                reject(position, body, "parse", f"{type(exc).__name__}: {exc}"[:500])
                continue
            if notification is None:
                outcome.ignored += 1
                continue
            try:
                decided = self._decide_with_retries(notification)
            except HandlerFailed as exc:
                reject(position, body, "handler", f"handler failed: {exc}")
                continue
            if decided:
                outcome.applied += 1
                outcome.decided.append((position, decided))
                commands.extend(decided)
                times.append(notification.timestamp)
            else:
                outcome.ignored += 1
        outcome.commands = len(commands)
        return commands, times, outcome

    # -- I/O ------------------------------------------------------------------------
    def apply(self, commands: Sequence[TimerCommand]) -> ApplyResult:
        """Store commands; raises StoreError on failure.

        One read of the batch's items, then one conditional write per changed resource on
        the writer threads: all commands of a resource fold into its one write, the
        in-order stream's result.
        """
        if not commands:
            return ApplyResult()
        return self.store.apply(commands, writers=self._writers)

    def process(self, bodies: Sequence[Body]) -> BatchOutcome:
        """Handle one batch: dead letters recorded, commands stored; raises StoreError."""
        commands, times, outcome = self.sort(bodies)
        started = time.perf_counter()
        if outcome.dead_letters:
            self.deadletters.record(outcome.dead_letters)
        try:
            outcome.result = self.apply(commands)
        except StoreError as exc:
            if not exc.rejected:
                raise
            outcome.result = self._apply_each(bodies, outcome)
        stored_at = datetime.now(UTC)
        m = self.metrics
        m.apply_latency.observe(time.perf_counter() - started)
        m.applied.inc(outcome.applied)
        m.ignored.inc(outcome.ignored)
        m.writes.inc(outcome.result.written)
        for letter in outcome.dead_letters:
            m.dead_lettered.labels(letter.stage).inc()
        for t in times:
            m.event_latency.observe(max((stored_at - t).total_seconds(), 0.0))
        if self.observer is not None:
            self.observer(times, stored_at)
        return outcome

    def _apply_each(self, bodies: Sequence[Body], outcome: BatchOutcome) -> ApplyResult:
        """Apply the batch body by body after the store refused a write of it (an item over
        DynamoDB's size limit): the bodies whose timers it refuses become dead letters, the
        rest are stored. Without this the batch would be requeued, and refused, for ever."""
        results: list[ApplyResult] = []
        refused: list[DeadLetter] = []
        for position, decided in outcome.decided:
            try:
                results.append(self.store.apply(decided))
            except StoreError as exc:
                if not exc.rejected:
                    raise
                refused.append(dead_letter(bodies[position], stage="store", now=self.clock(),
                                           reason=f"the store refused its timers: {exc}"))  # fmt: skip
                outcome.dead_letter_positions.append(position)
        if refused:
            self.deadletters.record(refused)
            outcome.dead_letters.extend(refused)
            outcome.applied -= len(refused)
        return ApplyResult(
            written=sum(r.written for r in results),
            unchanged=sum(r.unchanged for r in results),
            retries=sum(r.retries for r in results),
        )


def _utcnow() -> datetime:
    return datetime.now(UTC)


class HandlerFailed(RuntimeError):
    """A policy handler raised on every attempt."""
