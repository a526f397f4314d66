"""Lambda entry point: OpenStack notifications (Amazon MQ for RabbitMQ or SQS) into timers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reclaim.deadletters import DeadLetterSink
from reclaim.serverless import notifications
from reclaim.serverless.runtime import runtime
from reclaim.settings import IngestSettings, PolicySettings
from reclaim.store.port import TimerStore


def handle(
    event: Mapping[str, Any],
    policy: PolicySettings,
    store: TimerStore,
    deadletters: DeadLetterSink,
    ingest: IngestSettings | None = None,
) -> dict[str, Any]:
    """Run one batch through parse, policy and store with the adapters given."""
    return notifications.handle(event, policy, store, deadletters, ingest=ingest)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda's entry: the batch with this environment's settings and timer table."""
    env = runtime()
    return handle(event, env.settings.policy, env.store, env.deadletters, env.settings.ingest)
