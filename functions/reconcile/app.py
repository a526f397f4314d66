"""Lambda entry point: a daily tick reconciles the timers with the cloud's servers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reclaim.serverless import reconcile
from reclaim.serverless.runtime import cloud_connection, runtime
from reclaim.settings import Settings
from reclaim.store.port import TimerStore


def handle(
    event: Mapping[str, Any], conn: Any, store: TimerStore, settings: Settings
) -> dict[str, Any]:
    """Reconcile as of the event's time with the connection and store given."""
    return reconcile.handle(event, conn, store, settings)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda's entry: this environment's cloud, timer table and settings."""
    env = runtime()
    return handle(event, cloud_connection(), env.store, env.settings)
