"""Timers as rows for people and machines, and the one way they show times (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from reclaim.timers import Timer


def stamp(value: datetime | None) -> str | None:
    """An instant as every command shows it: ISO 8601 in UTC, to the second, with ``Z``
    (``2026-03-08T09:01:19Z``); None stays None."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pending_rows(
    timers: Iterable[Timer], due_before: datetime | None = None
) -> list[dict[str, Any]]:
    """One row per pending action and per unsent notice, in due order.

    Notify rows carry ``"action": "notify"`` and the ``notice`` kind; every row names the
    rule, the owner and the due date (:func:`stamp`), and says ``what`` falls due there
    (``notice shelve_upcoming`` or the action), as ``reclaim plan`` does.
    """
    rows: list[dict[str, Any]] = []
    for t in timers:
        if t.state != "pending" or t.due_at is None:
            continue
        base = {
            "resource_type": t.resource_type,
            "resource_id": t.resource_id,
            "rule": t.rule,
            "project_id": t.project_id,
            "user_id": t.user_id,
            "since": stamp(t.since),
        }
        entries = [
            (n.due_at, {"what": f"notice {n.kind}", "action": "notify", "notice": n.kind})
            for n in t.pending_notices()
        ]
        entries.append((t.due_at, {"what": t.action, "action": t.action}))
        for due, extra in entries:
            if due_before is None or due <= due_before:
                row = {**base, **extra, "due_at": stamp(due)}
                rows.append({k: v for k, v in row.items() if v is not None})
    rows.sort(key=lambda r: (r["due_at"], r["resource_type"], r["resource_id"], r["rule"]))
    return rows
