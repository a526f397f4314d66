"""Pure parsing of OpenStack notification bodies into typed notifications (no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

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


def parse_timestamp(value: Any) -> datetime:
    """Read an oslo timestamp (naive UTC ``YYYY-MM-DD HH:MM:SS.ffffff``) or ISO-8601 as aware UTC."""
    if type(value) is str and len(value) == 26 and value[10] == " ":
        # oslo's own "YYYY-MM-DD HH:MM:SS.ffffff" (naive UTC): the fast path
        try:
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        except ValueError as exc:
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
    return dt.astimezone(UTC)


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


def read_envelope(body: bytes | str | Mapping[str, Any]) -> Envelope:
    """Parse an AMQP body in either oslo form into an :class:`Envelope`. Pure.

    ``messagingv2`` wraps the message as ``{"oslo.version": "2.0", "oslo.message": "<json>"}``;
    ``messaging`` (v1) sends the flat dict. ``_context_*`` keys become ``context``.
    """
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
