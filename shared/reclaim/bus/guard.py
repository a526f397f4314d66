"""A thin hook in oslo.messaging's RabbitMQ consumer so no body is dropped unrecorded.

What oslo does on its own (``_drivers/impl_rabbit.py``, ``amqpdriver.py``,
``notify/dispatcher.py``):

* a body that does not decode (not JSON, a broken ``oslo.message``, too deep), or decodes to
  something not a dict, raises in ``Consumer._callback``, which logs and ``reject()``\\ s it:
  without a dead-letter exchange the broker discards it;
* a dict without a known ``priority`` is logged and acknowledged by the dispatcher; a
  non-string ``priority`` raises in the batch dispatcher and requeues the *whole batch*,
  forever (a poison batch); a non-string ``event_type`` is filtered out and acknowledged;
* a second delivery of an ``_unique_id`` oslo has already acknowledged is neither passed on
  nor acknowledged: it holds a prefetch slot until the connection closes.

The hook replaces ``Consumer._callback`` for the queues of registered pools only (other
oslo consumers in the process behave as before). It checks the body as oslo's listener
and dispatcher will read it; a body they would drop or loop on goes to a
:class:`DeadLetterSink` instead, which records it and only then acknowledges it (on the
consumer thread, through oslo's own ``MessageOperationsHandler``, since kombu is not
thread-safe). Everything else takes oslo's normal path.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from reclaim.bus.log import emit
from reclaim.bus.metrics import Metrics
from reclaim.deadletters import DeadLetter, DeadLetterStore, dead_letter
from reclaim.oslo import messaging
from reclaim.store import StoreError
from reclaim.wire import MAX_BODY, Bounds, ParseError, check_depth

_PRIORITIES = frozenset({"audit", "debug", "info", "warn", "error", "critical", "sample"})

_lock = threading.Lock()
_sinks: dict[str, DeadLetterSink] = {}
_original: Callable[..., Any] | None = None


def problem_of(message: Any) -> str | None:
    """Why oslo's listener and dispatcher would drop or loop on a decoded body; None if fine. Pure."""
    if not isinstance(message, dict):
        return f"not a notification: body decodes to {type(message).__name__}"
    priority = message.get("priority")
    if not isinstance(priority, str):
        return f"priority: expected a string, got {type(priority).__name__}"
    if priority.lower() not in _PRIORITIES:
        return f"priority: unknown priority {priority[:40]!r}"
    event_type = message.get("event_type")
    if not isinstance(event_type, str):
        return f"event_type: expected a string, got {type(event_type).__name__}"
    return None


class DeadLetterSink:
    """Records rejected deliveries in a background thread, then acknowledges them."""

    def __init__(
        self,
        store: DeadLetterStore,
        metrics: Metrics,
        event_types: str,
        retry_delay: float = 1.0,
        max_body: int = MAX_BODY,
    ) -> None:
        self.store = store
        self.max_body = max_body
        self.metrics = metrics
        self.routed = re.compile(event_types)
        self.retry_delay = retry_delay
        self._queue: queue.Queue[tuple[Any, Any, DeadLetter] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="reclaim-deadletters", daemon=True)
        self._stopping = threading.Event()
        self._thread.start()

    def submit(self, listener: Any, message: Any, problem: str) -> None:
        """Queue a raw kombu message for recording; it is acked once recorded."""
        info = getattr(message, "delivery_info", None) or {}
        letter = dead_letter(
            message.body if isinstance(message.body, bytes | str) else repr(message.body),
            stage="decode", reason=problem,
            exchange=info.get("exchange"), routing_key=info.get("routing_key"),
        )  # fmt: skip
        self._queue.put((listener, message, letter))

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < 200:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                batch.append(item)
            self._record(batch)

    def _record(self, batch: list[tuple[Any, Any, DeadLetter]]) -> None:
        delay = self.retry_delay
        while True:
            try:
                self.store.record([letter for _, _, letter in batch])
                break
            except StoreError as exc:
                emit(
                    "deadletter_store_error",
                    logging.ERROR,
                    pending=len(batch),
                    error=str(exc)[:300],
                )
                if self._stopping.is_set():
                    # Leave them unacknowledged: the broker redelivers them to the next run.
                    for listener, message, _ in batch:
                        listener._message_operations_handler.do(message.requeue)
                    return
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
        for listener, message, letter in batch:
            listener._message_operations_handler.do(message.ack)
            self.metrics.dead_lettered.labels("decode").inc()
            emit("dead_letter", logging.WARNING, id=letter.id, stage="decode",
                 reason=letter.reason, routing_key=letter.routing_key, size=letter.body_size)  # fmt: skip

    def drain(self, timeout: float = 30.0) -> None:
        """Record everything submitted so far and stop the thread."""
        self._stopping.set()
        self._queue.put(None)
        self._thread.join(timeout)


def _guarded_callback(self: Any, message: Any) -> None:
    sink = _sinks.get(self.queue_name)
    if sink is None:
        assert _original is not None
        _original(self, message)
        return
    impl_rabbit = _impl_rabbit()
    m2p = getattr(self.queue.channel, "message_to_python", None)
    if m2p:
        message = m2p(message)
    sink.metrics.received.inc()
    body: Any = None
    raw = getattr(message, "body", None)
    try:
        # Refused before it is decoded (kombu decodes ``payload`` on first access).
        Bounds(max_body=sink.max_body).check_size(len(raw) if isinstance(raw, bytes | str) else 0)
    except ParseError as exc:
        sink.submit(self.callback, message, str(exc))
        return
    try:
        # No recursive decoder (kombu's, oslo's) sees a body nested too deeply: the outer
        # body before kombu decodes it, a v2 envelope's message before oslo does.
        if isinstance(raw, bytes | str):
            check_depth(raw)
        payload = message.payload
        inner = payload.get("oslo.message") if isinstance(payload, dict) else None
        if isinstance(inner, str):
            check_depth(inner)
        # What RabbitMessage does, in two steps, so each failure gets its own reason.
        body = impl_rabbit.rpc_common.deserialize_msg(payload)
        problem = problem_of(body)
    except ParseError as exc:
        problem = f"undecodable body: {exc.problem}"
    except RecursionError:
        problem = "undecodable body: nested too deeply"
    except Exception as exc:
        text = str(exc)
        problem = (
            "undecodable body: nested too deeply"
            if "recursion" in text
            else f"undecodable body: {type(exc).__name__}: {text[:300]}"
        )
    if problem is not None:
        sink.submit(self.callback, message, problem)
        return
    decoded = _decoded(impl_rabbit, message, body)
    unique_id = decoded.get("_unique_id")
    cache = getattr(self.callback, "msg_id_cache", None)
    if unique_id is not None and cache is not None and unique_id in cache.prev_msgids:
        # oslo acknowledged this message already; it would hold the delivery forever.
        message.ack()
        sink.metrics.ignored.inc()
        return
    if not sink.routed.match(decoded["event_type"]):
        sink.metrics.ignored.inc()  # oslo's NotificationFilter acknowledges it
    try:
        self.callback(decoded)
    except Exception:
        logging.getLogger(__name__).exception("Failed to process message ... skipping it.")
        message.reject()


def _decoded(impl_rabbit: Any, raw: Any, body: dict[str, Any]) -> Any:
    """A ``RabbitMessage`` from an already decoded body (oslo's would decode it again)."""
    message = impl_rabbit.RabbitMessage.__new__(impl_rabbit.RabbitMessage)
    dict.__init__(message, body)
    message._raw_message = raw
    return message


def _impl_rabbit() -> Any:
    messaging()
    from oslo_messaging._drivers import impl_rabbit

    return impl_rabbit


def install(pool: str, sink: DeadLetterSink) -> None:
    """Guard the consumers of queue ``pool`` (oslo names a pool's queue after the pool)."""
    global _original
    impl_rabbit = _impl_rabbit()
    with _lock:
        if _original is None:
            _original = impl_rabbit.Consumer._callback
            impl_rabbit.Consumer._callback = _guarded_callback
        _sinks[pool] = sink


def uninstall(pool: str) -> None:
    """Stop guarding ``pool``'s consumers."""
    with _lock:
        _sinks.pop(pool, None)
