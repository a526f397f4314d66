"""The reconcile on Lambda: a daily tick rebuilds the server timers from the cloud's listing.

The cloud is reached as the sweeper reaches it (:func:`reclaim.serverless.sweeper.connect_cloud`:
clouds.yaml from the ``CLOUDS_YAML_SECRET`` secret, entry ``OS_CLOUD``). The reconcile runs
as of the schedule event's ``time``; it is idempotent, so a retried invocation only repeats
the listing. The first reconcile of a table (no record of a complete one yet) gives actions
already due the first-install grace (``reconcile.first_install_grace``), as any reconcile
does (:func:`reclaim.reconcile.engine.reconcile`); the report says so (``first_reconcile``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from reclaim.serverless.sweeper import sweep_time
from reclaim.settings import Settings
from reclaim.store.port import TimerStore


def handle(
    event: Mapping[str, Any],
    conn: Any,
    store: TimerStore,
    settings: Settings,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, Any]:
    """Reconcile the store with the cloud as of the tick's time; the report as JSON."""
    from reclaim.reconcile.engine import reconcile

    report = reconcile(conn, store, settings, sweep_time(event, clock))
    return report.as_json()
