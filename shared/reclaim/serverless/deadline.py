"""The time an invocation has left, so long work stops cleanly before Lambda kills it.

A sweeper that claims a timer and is then killed leaves the claim to expire by its lease:
the action is delayed, not lost, but a clean stop is better. :class:`Deadline` answers
"may I start another unit of work?" with a reserve kept for finishing the one in hand.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


class LambdaContext(Protocol):
    """The part of Lambda's context object reclaim reads."""

    function_name: str
    aws_request_id: str

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds until Lambda ends the invocation."""
        ...


@dataclass(frozen=True)
class Deadline:
    """A point on a monotonic clock, and the reserve to keep before it."""

    at: float
    reserve: float = 10.0
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)

    @classmethod
    def from_context(cls, context: LambdaContext, reserve: float = 10.0) -> Deadline:
        """The invocation's own deadline, read from Lambda's context."""
        return cls(time.monotonic() + context.get_remaining_time_in_millis() / 1000.0, reserve)

    @classmethod
    def after(
        cls, seconds: float, reserve: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> Deadline:
        """A deadline ``seconds`` from now on ``clock``."""
        return cls(clock() + seconds, reserve, clock)

    def remaining(self) -> float:
        """Seconds until the deadline (negative once past it)."""
        return self.at - self.clock()

    @property
    def stop_at(self) -> float:
        """The monotonic time after which no new work starts (``Sweeper.sweep(deadline=...)``)."""
        return self.at - self.reserve

    def expired(self) -> bool:
        """True once less than the reserve is left: start no new work (no new claims)."""
        return self.remaining() <= self.reserve


class LocalContext:
    """A stand-in for Lambda's context when a handler runs on this machine."""

    def __init__(
        self,
        function_name: str,
        timeout: float = 60.0,
        memory_mb: int = 512,
        region: str = "us-east-1",
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.invoked_function_arn = f"arn:aws:lambda:{region}:123456789012:function:{function_name}"
        self.aws_request_id = f"local-{time.time_ns():x}"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._ends = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left of the simulated timeout."""
        return max(0, int((self._ends - time.monotonic()) * 1000))

    def __repr__(self) -> str:
        return f"LocalContext({self.function_name!r})"


def remaining_seconds(context: Any) -> float | None:
    """Seconds left from any context that can tell, else None (no deadline known)."""
    getter = getattr(context, "get_remaining_time_in_millis", None)
    return getter() / 1000.0 if callable(getter) else None
