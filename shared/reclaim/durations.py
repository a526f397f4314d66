"""Durations written the way operators write them: ``14d``, ``36h``, ``90m``, ``1w2d``."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")


def parse_duration(value: Any) -> timedelta:
    """Parse ``"14d"``, ``"1w2d"``, ``"36h"``, ``"90s"`` or a timedelta. Pure.

    A number needs its unit: ``shelve_after: 14`` could mean 14 days as well as 14 seconds,
    so it is refused rather than guessed (zero alone is zero in any unit).
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value == 0:
            return timedelta(0)
        raise ValueError(
            f"a duration needs a unit: {value!r} (write e.g. {value}d, {value}h, {value}s)"
        )
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if text == "0":
            return timedelta(0)
        if text and _PART.sub("", text) == "":
            return timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in _PART.findall(text)))
        if text.replace(".", "", 1).isdigit():
            raise ValueError(
                f"a duration needs a unit: {value!r} (write e.g. {text}d, {text}h, {text}s)"
            )
    raise ValueError(f"not a duration: {value!r} (write e.g. 14d, 36h, 90m, 1w2d)")


def format_duration(value: timedelta) -> str:
    """Write a timedelta back in the shortest of the same notations (``14d``, ``1d12h``)."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    parts = []
    for unit in "dhms":
        count, seconds = divmod(seconds, _UNITS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
