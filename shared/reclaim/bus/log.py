"""Structured log lines: one JSON object per batch or problem, without secrets (request
context, tokens and URL passwords are removed: :func:`reclaim.redact.scrub`)."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from reclaim.redact import mask_text, scrub, scrub_text

LOG = logging.getLogger("reclaim.bus")


def emit(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``{"event": event, **fields}`` as one JSON line on the ``reclaim.bus`` logger."""
    if LOG.isEnabledFor(level):
        line = json.dumps(scrub({"event": event, **fields}), default=str, sort_keys=False)
        LOG.log(level, mask_text(line))


class JsonLineFormatter(logging.Formatter):
    """Format records as JSON lines of one schema: ``ts``, ``level``, ``event``, then the
    fields, then ``logger``. reclaim's own lines (:func:`emit`) give their event and fields;
    another library's line is the event ``log`` with its ``message``. Secrets are scrubbed
    from both (another library's message may hold a URL or a token)."""

    def format(self, record: logging.LogRecord) -> str:
        base: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "event": "log",
        }
        message = record.getMessage()
        try:
            parsed = json.loads(message) if message.startswith("{") else None
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("event"), str):
            base.update(scrub(parsed))
        else:
            base["message"] = scrub_text(message)
        base["logger"] = record.name
        if record.exc_info:
            base["exc"] = scrub_text(self.formatException(record.exc_info))
        return mask_text(json.dumps(base, default=str))


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler writing to whatever ``sys.stderr`` is when a record comes (as logging's
    last resort does), not the stream of the moment it was made."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure(level: str = "INFO") -> None:
    """Send every log record to stderr as a JSON line (``reclaim listen``, ``run``,
    ``mailer``, ``sweep``, ``reconcile``, ``replay``)."""
    import time

    handler = _Stderr()
    formatter = JsonLineFormatter()
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # reclaim's own lines at ``level``; other libraries' from WARNING (their INFO is noise
    # to an operator), all of them at DEBUG
    logging.getLogger("reclaim").setLevel(level.upper())
    wanted = logging.getLogger("reclaim").level
    root.setLevel(wanted if wanted <= logging.DEBUG else max(wanted, logging.WARNING))
    # oslo.messaging logs every reconnect attempt at INFO/ERROR: keep them, they matter.
    logging.getLogger("oslo_messaging").setLevel(logging.WARNING)
