"""The listener's name for :mod:`reclaim.deadletters` (one format for the bus and Lambda)."""

from reclaim.deadletters import (
    MAX_BODY,
    MAX_REASON,
    PARTITION,
    DeadLetter,
    DeadLetterStore,
    Stage,
    dead_letter,
)

__all__ = [
    "MAX_BODY",
    "MAX_REASON",
    "PARTITION",
    "DeadLetter",
    "DeadLetterStore",
    "Stage",
    "dead_letter",
]
