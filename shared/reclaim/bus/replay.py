"""Replay dead letters through the pure pipeline into the store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from reclaim import routes
from reclaim.deadletters import DeadLetterStore
from reclaim.settings import IngestSettings, PolicySettings
from reclaim.store.dynamodb import DynamoTimerStore


def replay(
    store: DynamoTimerStore,
    policy: PolicySettings,
    ids: Sequence[str] | None = None,
    ingest: IngestSettings | None = None,
) -> list[dict[str, Any]]:
    """Parse, decide and apply each open dead letter (``ids``, or all); record the outcome.

    A letter keeps the time it was first received: its dates are checked against the
    event-time window of that moment (``ingest``, as configured now), so a widened window
    lets it through and an unchanged one gives the same reason again.

    Returns one ``{id, outcome, reason?, commands?}`` per letter; ``outcome`` is
    ``replayed``, ``failed`` or ``truncated`` (only the head of the body was kept).
    Raises KeyError for an unknown id, StoreError when the store fails.
    """
    letters_store = DeadLetterStore.beside(store)
    if ids:
        letters = []
        for letter_id in ids:
            letter = letters_store.get(letter_id)
            if letter is None:
                raise KeyError(f"no dead letter {letter_id}")
            letters.append(letter)
    else:
        letters = letters_store.list()
    results: list[dict[str, Any]] = []
    for letter in letters:
        if letter.truncated:
            results.append({"id": letter.id, "outcome": "truncated",
                            "reason": f"only {len(letter.raw())} of {letter.body_size} bytes kept"})  # fmt: skip
            continue
        try:
            bounds = (ingest or IngestSettings()).bounds(letter.received_at)
            commands = routes.commands_for(letter.raw(), policy, bounds)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"[:2000]
            letters_store.put(
                letter.model_copy(update={"reason": reason, "attempts": letter.attempts + 1})
            )
            results.append({"id": letter.id, "outcome": "failed", "reason": reason})
            continue
        store.apply(commands)
        letters_store.put(
            letter.model_copy(update={"state": "replayed", "replayed_at": datetime.now(UTC)})
        )
        results.append({"id": letter.id, "outcome": "replayed", "commands": len(commands)})
    return results
