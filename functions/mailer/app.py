"""Lambda entry point: notices from Amazon MQ for RabbitMQ mailed to the people they concern."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reclaim.deadletters import DeadLetterSink
from reclaim.mailer import Mailer
from reclaim.serverless import mailer
from reclaim.serverless.runtime import mailer as mailer_core
from reclaim.serverless.runtime import runtime


def handle(event: Mapping[str, Any], core: Mailer, deadletters: DeadLetterSink) -> dict[str, Any]:
    """Mail one batch of notices (or run the digest pass on a schedule) with the adapters given."""
    return mailer.handle(event, core, deadletters)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda's entry: this environment's mailer (Keystone, SMTP secret) and timer table."""
    return handle(event, mailer_core(), runtime().deadletters)
