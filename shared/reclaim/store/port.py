"""What the rest of reclaim needs from a timer store."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from reclaim.commands import TimerCommand
from reclaim.timers import Timer


@dataclass(frozen=True)
class ApplyResult:
    """How many timers a batch of commands changed, left alone, and had to retry."""

    written: int = 0
    unchanged: int = 0
    retries: int = 0


class TimerStore(Protocol):
    """Timers keyed by (resource, rule); every write is conditional on what was read."""

    def apply(
        self, commands: Sequence[TimerCommand], *, writers: Executor | None = None
    ) -> ApplyResult:
        """Fold commands into the stored timers (see :func:`reclaim.timers.merge`); with
        ``writers``, writes of different resources may run on that executor."""
        ...

    def timers_for(self, resource_type: str, resource_id: str) -> list[Timer]:
        """Every timer of one resource, whatever its state."""
        ...

    def pending(self, due_before: datetime | None = None) -> Iterator[Timer]:
        """Pending timers with work due before ``due_before`` (all if None), by due time."""
        ...

    def replace(self, old: Timer, new: Timer) -> Timer | None:
        """Store ``new`` if the stored timer is still ``old`` (same version); else None."""
        ...
