"""Lambda entry point: the self-service pages (``reclaim web``) behind an HTTP API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reclaim.serverless import web
from reclaim.serverless.runtime import web_app


def handle(event: Mapping[str, Any], context: Any, app: Any) -> dict[str, Any]:
    """Answer one HTTP API request with the application given."""
    return web.handle(event, context, app)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda's entry: this environment's application, built on first use."""
    return handle(event, context, web_app())
