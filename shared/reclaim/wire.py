"""Pure parsing of OpenStack notification bodies into typed notifications (no I/O)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from reclaim.durations import MAX_DURATION

P = TypeVar("P", bound=BaseModel)

#: Keys every oslo notification carries; a sample file (Nova's doc samples) has only the
#: last four, so ``message_id``/``timestamp`` must be supplied by the caller or the test.
_ENVELOPE_KEYS = ("message_id", "timestamp", "event_type", "priority", "publisher_id", "payload")
_ENVELOPE_SET = frozenset(_ENVELOPE_KEYS)


class ParseError(ValueError):
    """A notification body that cannot be read; ``where`` names the offending field."""

    def __init__(self, problem: str, where: str = "body") -> None:
        super().__init__(f"{where}: {problem}")
        self.problem = problem
        self.where = where
        #: Set when the envelope was read before the problem was found.
        self.event_type: str | None = None
        self.message_id: str | None = None


class OutOfWindow(ParseError):
    """A date an event carries lies outside the event-time window (:class:`Bounds`)."""


#: The earliest event time accepted by default: no cloud running reclaim sent events before.
NOT_BEFORE = datetime(2010, 1, 1, tzinfo=UTC)
#: How far ahead of its receipt an event may be stamped by default (publishers' clock skew).
MAX_AHEAD = timedelta(hours=1)
#: The largest notification body read by default, in bytes (Nova's biggest are ~20 KB).
MAX_BODY = 1024 * 1024
#: The deepest nesting of arrays and objects a JSON body may have (Nova's nest a few levels).
#: A deeper body is refused before a recursive decoder (Python's json, which kombu and oslo
#: use) sees it: they recurse to the interpreter's limit, and a garbage collection or
#: finalizer that runs at that depth fails where nothing can catch it.
MAX_DEPTH = 100
#: How far ahead of its receipt a date that names a time to come (a renewed allocation's new
#: end) may lie: the longest duration a setting may hold.
MAX_SCHEDULED = MAX_DURATION


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_OPENING = frozenset(b"[{")


def _raw(text: bytes | str) -> bytes:
    return text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text


def nesting_depth(text: bytes | str) -> int:
    """How deep arrays and objects nest in JSON ``text`` (brackets inside strings not
    counted; text that is not JSON is measured all the same). Pure, without recursion."""
    brackets = _NOT_BRACKET.sub(b"", _JSON_STRING.sub(b"", _raw(text)))
    return max(accumulate(1 if c in _OPENING else -1 for c in brackets), default=0)


def check_depth(text: bytes | str, max_depth: int = MAX_DEPTH) -> None:
    """Raise :class:`ParseError` if JSON ``text`` nests deeper than ``max_depth``. Pure; a
    body with fewer brackets than that (the common case) costs two counts."""
    raw = _raw(text)
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return
    if nesting_depth(raw) > max_depth:
        raise ParseError(f"nested too deeply (over {max_depth} levels of arrays and objects)")


@dataclass(frozen=True, slots=True)
class Bounds:
    """What an input may be: its size, and the event-time window its dates must fall in.

    ``received_at`` is when the adapter (listener, replay, Lambda) got the message; without
    it only the floor applies (pure callers reading history). Pure: the clock is read by the
    caller, at the edge.
    """

    received_at: datetime | None = None
    not_before: datetime = NOT_BEFORE
    max_ahead: timedelta = MAX_AHEAD
    max_body: int = MAX_BODY

    def check(self, value: datetime, where: str, *, scheduled: bool = False) -> None:
        """Raise :class:`OutOfWindow` unless ``value`` lies in the window. ``scheduled``: a
        date that names a time to come, bounded by :data:`MAX_SCHEDULED` instead."""
        when = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        try:
            if when < self.not_before:
                raise OutOfWindow(
                    f"{_iso(when)} is before the event-time floor {_iso(self.not_before)}"
                    " (ingest.not_before)",
                    where,
                )
            if self.received_at is None:
                return
            ahead = MAX_SCHEDULED if scheduled else self.max_ahead
            if when - self.received_at > ahead:
                limit = "" if scheduled else " (ingest.max_ahead)"
                raise OutOfWindow(
                    f"{_iso(when)} is more than {_span(ahead)} after its receipt at "
                    f"{_iso(self.received_at.replace(microsecond=0))}{limit}",
                    where,
                )
        except OverflowError as exc:  # an offset that takes it past year 1 or 9999
            raise OutOfWindow(f"{value!r} is out of range", where) from exc

    def check_size(self, size: int) -> None:
        """Raise :class:`ParseError` if a body of ``size`` bytes is over ``max_body``."""
        if size > self.max_body:
            raise ParseError(
                f"{size} bytes, over the limit of {self.max_body} (ingest.max_body)", "body"
            )


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _span(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_timestamp(value: Any) -> datetime:
    """Read an oslo timestamp (naive UTC ``YYYY-MM-DD HH:MM:SS.ffffff``) or ISO-8601 as aware UTC."""
    if type(value) is str and len(value) == 26 and value[10] == " ":
        # oslo's own "YYYY-MM-DD HH:MM:SS.ffffff" (naive UTC): the fast path
        try:
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        except (ValueError, OverflowError) as exc:
            raise ValueError(f"not a timestamp: {value!r}") from exc
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"not a timestamp: {value!r}") from exc
    else:
        raise ValueError(f"not a timestamp: {value!r}")
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    try:
        return dt.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise ValueError(f"not a timestamp: {value!r} (out of range)") from exc


@dataclass(slots=True)
class Envelope:
    """The oslo.messaging notification envelope, whatever the wire form.

    Not frozen only because a frozen dataclass costs several times more to build, once per
    message; nothing changes one after parsing.
    """

    message_id: str
    publisher_id: str
    event_type: str
    priority: str
    timestamp: datetime
    payload: dict[str, Any]
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Notification(Generic[P]):
    """An envelope whose payload has been validated into the family's pydantic model ``P``.

    Treated as immutable (not frozen, for the cost of building one per message).
    """

    message_id: str
    publisher_id: str
    event_type: str
    priority: str
    timestamp: datetime
    payload: P
    context: dict[str, Any] = field(default_factory=dict)


def _as_dict(body: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
    if type(body) is str:  # the common case first: this runs twice per message
        try:
            parsed = orjson.loads(body)
        except (orjson.JSONDecodeError, RecursionError) as exc:
            raise ParseError(f"not JSON ({exc})") from exc
        if type(parsed) is dict:
            return parsed
        body = parsed
    if isinstance(body, bytes | bytearray | memoryview):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if isinstance(body, str):
        try:
            body = orjson.loads(body)
        except (orjson.JSONDecodeError, RecursionError) as exc:
            raise ParseError(f"not JSON ({exc})") from exc
    if not isinstance(body, Mapping):
        raise ParseError(f"expected a JSON object, got {type(body).__name__}")
    return body if type(body) is dict else dict(body)


def read_envelope(body: bytes | str | Mapping[str, Any], max_body: int = MAX_BODY) -> Envelope:
    """Parse an AMQP body in either oslo form into an :class:`Envelope`. Pure.

    ``messagingv2`` wraps the message as ``{"oslo.version": "2.0", "oslo.message": "<json>"}``;
    ``messaging`` (v1) sends the flat dict. ``_context_*`` keys become ``context``. A body
    given as text or bytes longer than ``max_body`` bytes is refused before it is decoded
    (a decoded mapping's size is checked where its bytes were, e.g. the bus guard).
    """
    if isinstance(body, str):
        # A character is 1 to 4 bytes: encode only when the count could be either side.
        if len(body) * 4 > max_body:
            Bounds(max_body=max_body).check_size(len(body.encode("utf-8", "surrogatepass")))
    elif isinstance(body, bytes | bytearray | memoryview):
        Bounds(max_body=max_body).check_size(len(body))
    outer = _as_dict(body)
    if "oslo.message" in outer:
        inner = outer["oslo.message"]
        if not isinstance(inner, str | bytes | Mapping):
            raise ParseError("must be a JSON string", "oslo.message")
        try:
            message = _as_dict(inner)
        except ParseError as exc:
            raise ParseError(exc.problem, "oslo.message") from exc
    else:
        message = outer
    if not message.keys() >= _ENVELOPE_SET:
        missing = [k for k in _ENVELOPE_KEYS if k not in message]
        raise ParseError(f"missing {', '.join(missing)}", "envelope")
    # Checked by hand rather than by pydantic: this runs for every message on the bus.
    for key in ("message_id", "publisher_id", "event_type", "priority"):
        if not isinstance(message[key], str):
            raise ParseError(f"expected a string, got {type(message[key]).__name__}", key)
    payload = message["payload"]
    if not isinstance(payload, Mapping):
        raise ParseError(f"expected an object, got {type(payload).__name__}", "payload")
    try:
        timestamp = parse_timestamp(message["timestamp"])
    except ValueError as exc:
        raise ParseError(str(exc), "timestamp") from exc
    context = {k[9:]: v for k, v in message.items() if k[:9] == "_context_"}
    return Envelope(
        message_id=message["message_id"],
        publisher_id=message["publisher_id"],
        event_type=message["event_type"],
        priority=message["priority"].upper(),
        timestamp=timestamp,
        payload=payload if type(payload) is dict else dict(payload),
        context=context,
    )


def read_payload(envelope: Envelope, model: type[P]) -> Notification[P]:
    """Validate ``envelope.payload`` into ``model``; a mismatch raises :class:`ParseError`."""
    try:
        payload = model.model_validate(envelope.payload)
    except ValidationError as exc:
        problem, where = _first_error(exc)
        raise ParseError(problem, f"payload.{where}" if where != "body" else "payload") from exc
    return Notification(
        message_id=envelope.message_id,
        publisher_id=envelope.publisher_id,
        event_type=envelope.event_type,
        priority=envelope.priority,
        timestamp=envelope.timestamp,
        payload=payload,
        context=envelope.context,
    )


def _first_error(exc: ValidationError) -> tuple[str, str]:
    errors = exc.errors(include_url=False)
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{first['msg']}{more}", where
