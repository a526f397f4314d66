"""What a function builds once per execution environment: settings, store, dead letters.

Lambda reuses an environment for many invocations; clients made at the first invocation
(not at import, so tests and ``reclaim invoke --lambda`` can set the environment first) are
kept until :func:`reset`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reclaim.deadletters import DeadLetterStore
from reclaim.settings import Settings, describe_error, load_settings
from reclaim.store import DynamoTimerStore, open_store

if TYPE_CHECKING:
    from reclaim.mailer import Mailer
    from reclaim.serverless.sweeper import SweeperDeps


class ConfigurationError(RuntimeError):
    """The function's settings are wrong; the message says which, and shows no secret."""


@dataclass(frozen=True)
class Runtime:
    """The settings and adapters a handler runs with."""

    settings: Settings
    store: DynamoTimerStore
    deadletters: DeadLetterStore


_current: Runtime | None = None
_sweeper: SweeperDeps | None = None
_conn: Any = None
_mailer: Mailer | None = None
_web: Any = None


def runtime() -> Runtime:
    """The environment's runtime, built from ``RECLAIM_*`` variables on first use."""
    global _current
    if _current is None:
        # Lambda's root logger passes WARNING and up; the batch summaries are INFO.
        logging.getLogger("reclaim").setLevel(
            os.environ.get("AWS_LAMBDA_LOG_LEVEL", "INFO").upper()
        )
        try:
            settings = load_settings()
        except Exception as exc:
            # One line without the values (a secret's or a URL's): pydantic's own text
            # repeats every input, and Lambda logs an exception's whole chain.
            raise ConfigurationError(f"settings: {describe_error(exc)}") from None
        store = open_store(settings.store_url)
        _current = Runtime(settings, store, DeadLetterStore.beside(store))
    return _current


def sweeper_deps() -> SweeperDeps:
    """The sweeper's adapters (cloud, notices) on this environment's runtime, built once."""
    global _sweeper
    if _sweeper is None:
        from reclaim.serverless.sweeper import build_deps

        env = runtime()
        _sweeper = build_deps(env.settings, env.store)
    return _sweeper


def cloud_connection() -> Any:
    """The environment's openstacksdk connection (clouds.yaml from its secret), made once."""
    global _conn
    if _conn is None:
        from reclaim.serverless.sweeper import connect_cloud

        _conn = connect_cloud()
    return _conn


def mailer() -> Mailer:
    """The mailer core (Keystone, SMTP from its secret, the ledger) on this runtime, built once."""
    global _mailer
    if _mailer is None:
        from reclaim.serverless.mailer import build_mailer

        env = runtime()
        _mailer = build_mailer(env.settings, env.store, cloud_connection())
    return _mailer


def web_app() -> Any:
    """The web application (``reclaim web``) on this runtime, built once."""
    global _web
    if _web is None:
        from reclaim.serverless.web import build_app

        _web = build_app(runtime())
    return _web


def reset() -> None:
    """Forget the runtime, so the next call reads the environment again."""
    global _current, _sweeper, _conn, _mailer, _web
    _current = None
    _sweeper = None
    _conn = None
    _mailer = None
    _web = None
