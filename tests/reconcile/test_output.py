"""``reclaim reconcile``'s report as an operator reads it at 80 columns."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from reclaim_sim import SimServer


def test_the_drift_fits_80_columns_and_cuts_no_id(
    sim_server: SimServer,
    project_factory: Any,
    reconcile_cli: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    p = project_factory()
    now = sim_server.cloud.clock.now()
    for n in range(3):
        p.boot(f"stopped-{n}", state="stopped", updated_at=now - timedelta(days=30 + n))
    args = ["--project", p.project_id, "--now", now.isoformat(), "--dry-run"]

    table = reconcile_cli(*args)
    assert table.exit_code == 0, table.output
    assert all(len(line) <= 80 for line in table.stdout.splitlines()), table.stdout
    assert "3 timers would change; dry run: nothing written" in table.stdout
    words = re.findall(r"[\w-]+", table.stdout)
    ids = reconcile_cli(*args, "-f", "value", "-c", "resource_id").stdout.split()
    assert len(ids) == 3
    assert all(any(len(w) >= 8 and i.startswith(w) for w in words) for i in ids)
    assert all(re.search(r"\d\d:\d\d:\d\dZ", line) for line in table.stdout.splitlines()
               if any(i[:8] in line for i in ids))  # fmt: skip
    rows = json.loads(reconcile_cli(*args, "-f", "json").stdout)
    assert sorted(r["resource_id"] for r in rows) == sorted(ids)
    assert all(r["due"] == r["due_after"] and r["due"].endswith("Z") for r in rows)
