"""Lambda entry point: a scheduled tick runs one sweep pass over the due timers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reclaim.serverless import sweeper
from reclaim.serverless.deadline import Deadline
from reclaim.serverless.runtime import sweeper_deps


def handle(
    event: Mapping[str, Any],
    deps: sweeper.SweeperDeps,
    owner_id: str = "reclaim-sweeper",
    stop_at: float | None = None,
) -> dict[str, Any]:
    """Sweep as of the event's time with the adapters given; start nothing after ``stop_at``."""
    return sweeper.handle(event, deps, owner_id=owner_id, stop_at=stop_at)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda's entry: this environment's adapters, stopping before the invocation's end."""
    deadline = Deadline.from_context(context, reserve=sweeper.RESERVE)
    owner = f"{context.function_name}:{context.aws_request_id}"
    return handle(event, sweeper_deps(), owner, deadline.stop_at)
