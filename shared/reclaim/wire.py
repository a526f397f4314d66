"""Pure parsing of OpenStack notification bodies into typed notifications (no I/O)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

P = TypeVar("P", bound=BaseModel)

#: Keys every oslo notification carries; a sample file (Nova's doc samples) has only the
#: last four, so ``message_id``/``timestamp`` must be supplied by the caller or the test.
_ENVELOPE_KEYS = ("message_id", "timestamp", "event_type", "priority", "publisher_id", "payload")


class ParseError(ValueError):
    """A notification body that cannot be read; ``where`` names the offending field."""

    def __init__(self, problem: str, where: str = "body") -> None:
        super().__init__(f"{where}: {problem}")
        self.problem = problem
        self.where = where


def parse_timestamp(value: Any) -> datetime:
    """Read an oslo timestamp (naive UTC ``YYYY-MM-DD HH:MM:SS.ffffff``) or ISO-8601 as aware UTC."""
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


class Envelope(BaseModel):
    """The oslo.messaging notification envelope, whatever the wire form."""

    model_config = ConfigDict(frozen=True)

    message_id: str
    publisher_id: str
    event_type: str
    priority: str
    timestamp: datetime
    payload: dict[str, Any]
    context: dict[str, Any] = Field(default_factory=dict)

    @field_validator("timestamp", mode="before")
    @classmethod
    def _aware_utc(cls, value: Any) -> datetime:
        return parse_timestamp(value)

    @field_validator("priority", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class Notification(BaseModel, Generic[P]):
    """An envelope whose payload has been validated into the family's model ``P``."""

    model_config = ConfigDict(frozen=True)

    message_id: str
    publisher_id: str
    event_type: str
    priority: str
    timestamp: datetime
    payload: P
    context: dict[str, Any] = Field(default_factory=dict)


def _as_dict(body: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(body, bytes | bytearray | memoryview):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise ParseError(f"not JSON ({exc})") from exc
    if not isinstance(body, Mapping):
        raise ParseError(f"expected a JSON object, got {type(body).__name__}")
    return dict(body)


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
    missing = [k for k in _ENVELOPE_KEYS if k not in message]
    if missing:
        raise ParseError(f"missing {', '.join(missing)}", "envelope")
    context = {k[len("_context_") :]: v for k, v in message.items() if k.startswith("_context_")}
    if not isinstance(message["payload"], Mapping):
        raise ParseError(f"expected an object, got {type(message['payload']).__name__}", "payload")
    try:
        return Envelope.model_validate(
            {**{k: message[k] for k in _ENVELOPE_KEYS}, "context": context}
        )
    except ValidationError as exc:
        raise ParseError(*_first_error(exc)) from exc


def read_payload(envelope: Envelope, model: type[P]) -> Notification[P]:
    """Validate ``envelope.payload`` into ``model``; a mismatch raises :class:`ParseError`."""
    try:
        payload = model.model_validate(envelope.payload)
    except ValidationError as exc:
        problem, where = _first_error(exc)
        raise ParseError(problem, f"payload.{where}" if where != "body" else "payload") from exc
    return Notification[model](  # type: ignore[valid-type]
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
