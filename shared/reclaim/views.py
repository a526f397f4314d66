"""Timers as rows for people and machines (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from rich.table import Table

from reclaim.commands import iso_z
from reclaim.timers import Timer


def pending_rows(
    timers: Iterable[Timer], due_before: datetime | None = None
) -> list[dict[str, Any]]:
    """One row per pending action and per unsent notice, in due order.

    Notify rows carry ``"action": "notify"`` and the ``notice`` kind; every row names the
    rule, the owner and the due date (ISO-8601, UTC, ``Z``).
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
            "since": iso_z(t.since) if t.since else None,
        }
        entries = [(n.due_at, {"action": "notify", "notice": n.kind}) for n in t.pending_notices()]
        entries.append((t.due_at, {"action": t.action}))
        for due, extra in entries:
            if due_before is None or due <= due_before:
                row = {**base, **extra, "due_at": iso_z(due)}
                rows.append({k: v for k, v in row.items() if v is not None})
    rows.sort(key=lambda r: (r["due_at"], r["resource_type"], r["resource_id"], r["rule"]))
    return rows


def rows_table(rows: list[dict[str, Any]], title: str) -> Table:
    """A rich table of :func:`pending_rows` output."""
    table = Table(title=title, title_justify="left")
    for col in ("due (UTC)", "action", "resource", "owner"):
        table.add_column(col, no_wrap=True)
    for r in rows:
        action = r["action"] if r["action"] != "notify" else f"notify {r['notice']}"
        owner = r.get("project_id") or (f"user {r['user_id']}" if r.get("user_id") else "")
        table.add_row(
            r["due_at"].replace("T", " ")[:16],
            action,
            f"{r['resource_type']} {r['resource_id'][:8]}",
            owner[:13],
        )
    return table
