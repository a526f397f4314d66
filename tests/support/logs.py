"""The one JSON line schema of reclaim's logs (listen, run, mailer)."""

from __future__ import annotations

import json
from typing import Any

#: Fields that are counts wherever they appear: integers, never ``42.0``.
COUNTS = ("applied", "received", "notices", "count", "dead_lettered", "done", "drift")


def log_records(lines: list[str]) -> list[dict[str, Any]]:
    """Every JSON line of a command's stderr, checked: ``ts``, ``level`` and ``event`` come
    first, in that order; counts are integers. Lines not starting with ``{`` are the
    human-readable start-up warning block."""
    records = []
    for line in lines:
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        assert list(record)[:3] == ["ts", "level", "event"], line
        assert record["ts"].endswith("Z") and record["level"] in (
            "debug",
            "info",
            "warning",
            "error",
            "critical",
        ), line
        for key in COUNTS:
            if key in record:
                assert isinstance(record[key], int), line
        records.append(record)
    return records
