"""Durations written the way operators write them: ``14d``, ``36h``, ``90m``, ``1w2d``."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")
#: The longest duration reclaim reads: any longer would take dates past the calendar's end.
MAX_DURATION = timedelta(days=3650)


def parse_duration(value: Any) -> timedelta:
    """Parse ``"14d"``, ``"1w2d"``, ``"36h"``, ``"90s"`` or a timedelta. Pure.

    A number needs its unit: ``shelve_after: 14`` could mean 14 days as well as 14 seconds,
    so it is refused rather than guessed (zero alone is zero in any unit).
    """
    if isinstance(value, timedelta):
        if abs(value) > MAX_DURATION:
            raise _too_long(value)
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
            seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
            if seconds > MAX_DURATION.total_seconds():
                raise _too_long(value)
            return timedelta(seconds=seconds)
        if text.replace(".", "", 1).isdigit():
            raise ValueError(
                f"a duration needs a unit: {value!r} (write e.g. {text}d, {text}h, {text}s)"
            )
    raise ValueError(f"not a duration: {value!r} (write e.g. 14d, 36h, 90m, 1w2d)")


def _too_long(written: Any) -> ValueError:
    return ValueError(
        f"longer than the longest duration allowed, {format_duration(MAX_DURATION)} "
        f"(10 years): {written!r}"
    )


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


_SPOKEN = (("day", 86400), ("hour", 3600), ("minute", 60))
_MICRO = 1_000_000


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}{'' if n == 1 else 's'}"


def _seconds(micro: int) -> str:
    whole, fraction = divmod(micro, _MICRO)
    if not fraction:
        return _count(whole, "second")
    return f"{whole}.{fraction:06d}".rstrip("0") + " seconds"


def human_duration(value: timedelta | None) -> str:
    """A duration as people write it, and exact: ``2 weeks``, ``10 days``, ``180 days``,
    ``36 hours``, ``1 day and 1 second``. Empty for None. Pure.

    Whole weeks are counted in weeks, whole days in days; less than two days, two hours or
    two minutes in whole hours, minutes or seconds (``36 hours``, ``90 minutes``); anything
    else in days, hours, minutes and seconds together (``2 days and 30 minutes``). Never
    in months or years, which have no fixed length, and never rounded: ``180d`` is ``180
    days``, not ``6 months``.
    """
    if value is None:
        return ""
    if value < timedelta(0):
        return "minus " + human_duration(-value)
    micro = value // timedelta(microseconds=1)
    if micro == 0:
        return "0 days"
    week, day, hour, minute = 7 * 86400 * _MICRO, 86400 * _MICRO, 3600 * _MICRO, 60 * _MICRO
    if micro % week == 0:
        return _count(micro // week, "week")
    if micro % day == 0:
        return _count(micro // day, "day")
    if micro % hour == 0 and micro < 2 * day:
        return _count(micro // hour, "hour")
    if micro % minute == 0 and micro < 2 * hour:
        return _count(micro // minute, "minute")
    if micro < 2 * minute:
        return _seconds(micro)
    parts: list[str] = []
    rest = micro
    for unit, seconds in _SPOKEN:
        count, rest = divmod(rest, seconds * _MICRO)
        if count:
            parts.append(_count(count, unit))
    if rest:
        parts.append(_seconds(rest))
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
