"""The simulated clock: stamps notifications and ``updated_at`` and can be advanced."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


def utc(when: datetime) -> datetime:
    """Return ``when`` as an aware UTC datetime (naive values are taken to be UTC). Pure."""
    if when.tzinfo is UTC:  # the common case, and astimezone() is slow
        return when
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


class SimClock:
    """A clock that starts at a chosen instant and moves only as told, or also in real time.

    A frozen clock (``ticking=False``) changes only through :meth:`advance` and :meth:`set`,
    which makes tests deterministic. A ticking clock also follows the wall clock from its
    start, as a real cloud would, which suits an interactive simulation.
    """

    def __init__(self, start: datetime | None = None, *, ticking: bool = False) -> None:
        self._lock = threading.Lock()
        self._base = utc(start) if start is not None else datetime.now(UTC)
        self._ticking = ticking
        self._mono = time.monotonic()

    @property
    def ticking(self) -> bool:
        return self._ticking

    def now(self) -> datetime:
        """The current simulated time, aware UTC."""
        with self._lock:
            if not self._ticking:
                return self._base
            return self._base + timedelta(seconds=time.monotonic() - self._mono)

    def advance(self, delta: timedelta | float) -> datetime:
        """Move the clock forward by ``delta`` (a timedelta or seconds); return the new time."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        if step < timedelta(0):
            raise ValueError("the simulated clock only moves forward")
        with self._lock:
            self._base += step
        return self.now()

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (it may be earlier: scenarios sometimes rewind a fresh cloud)."""
        with self._lock:
            self._base = utc(when)
            self._mono = time.monotonic()


def iso_z(when: datetime | None) -> str | None:
    """``2026-03-01T10:00:00Z``: Nova's ``created``/``updated``, Glance and Neutron times."""
    return None if when is None else utc(when).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_micro(when: datetime | None) -> str | None:
    """``2026-03-01T10:00:00.123456``: Nova ``launched_at`` and Cinder times (no zone)."""
    return None if when is None else utc(when).strftime("%Y-%m-%dT%H:%M:%S.%f")


def oslo_timestamp(when: datetime) -> str:
    """``2026-03-01 10:00:00.123456``: the oslo.messaging envelope ``timestamp`` (UTC)."""
    return utc(when).strftime("%Y-%m-%d %H:%M:%S.%f")


def parse_time(value: str | datetime) -> datetime:
    """Parse an ISO 8601 time (``Z``, offset or naive UTC) into an aware datetime. Pure."""
    if isinstance(value, datetime):
        return utc(value)
    text = value.strip().replace("Z", "+00:00")
    if " " in text and "T" not in text:
        text = text.replace(" ", "T", 1)
    return utc(datetime.fromisoformat(text))
