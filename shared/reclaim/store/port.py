"""What the rest of reclaim needs from a timer store."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from reclaim.commands import TimerCommand
from reclaim.timers import Timer


@dataclass(frozen=True)
class ApplyResult:
    """How many timers a batch of commands changed, left alone, had to retry, or could not
    apply (their resource's stored item is unreadable)."""

    written: int = 0
    unchanged: int = 0
    retries: int = 0
    #: Commands left unapplied because their resource's stored item does not decode.
    unreadable: int = 0


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


@dataclass(frozen=True)
class ReconcileMark:
    """The record that a reconcile of the whole cloud completed on a store.

    ``at`` is that reconcile's time; ``grace`` the first-install grace it applied (None:
    none). A store without it has never been reconciled: its first reconcile applies
    ``reconcile.first_install_grace`` (see :func:`reclaim.reconcile.engine.reconcile`).
    """

    at: datetime
    grace: timedelta | None = None


class ReconcileLog(Protocol):
    """Where a store keeps its :class:`ReconcileMark` (beside the timers, not one of them)."""

    def completed(self) -> ReconcileMark | None:
        """The mark of the first complete reconcile of the whole cloud; None if none yet."""
        ...

    def record(self, mark: ReconcileMark) -> bool:
        """Keep ``mark`` unless a mark is kept already (then False: the first one stays)."""
        ...
