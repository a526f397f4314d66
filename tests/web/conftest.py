"""Fixtures of the web tests: settings with a key, a store holding a stopped server's
timers, the application on a fixed clock, and a client."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from reclaim.policy.servers import SHELVE
from reclaim.settings import Settings, WebSettings
from reclaim.store import DynamoTimerStore
from reclaim.sweeper.notices import RecordingNotices
from reclaim.timers import AuditEntry, close, mark_notice_sent
from reclaim.web.app import create_app
from reclaim.web.links import LinkGrant, sign

KEY = "test-key-" + "x" * 40
BASE = "http://testserver"
T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
SERVER = "5b1c9f3e-0d3a-4c1e-9a77-2f6e1c0b7d11"
PROJECT = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
OTHER_SERVER = "9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a"
OTHER_PROJECT = "0f9e8d7c6b5a49382716f5e4d3c2b1a0"
USER = "u-1"
READER = "ada@example.org"


class Clock:
    """A clock the test moves."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def web_settings(**web: object) -> Settings:
    given = {"secret_key": KEY, "base_url": BASE, **web}
    return Settings(web=WebSettings.model_validate(given))


def stop_server(
    store: DynamoTimerStore,
    server: str = SERVER,
    project: str = PROJECT,
    at: datetime = T0,
    name: str = "analysis-vm",
) -> None:
    """The store as after Nova said ``server`` stopped at ``at``: a pending shelve."""
    policy = Settings().policy
    store.apply(
        SHELVE.schedule(
            server,
            since=at,
            delay=policy.shelve_after,
            event_time=at,
            notices=SHELVE.notices_before(policy.shelve_notices),
            project_id=project,
            user_id=USER,
            detail={"name": name, "state": "stopped"},
        )
    )


def warn(store: DynamoTimerStore, server: str, at: datetime) -> None:
    """Record the server's notices due by ``at`` as sent then (a sweep did)."""
    for t in store.timers_for("server", server):
        new = t
        for n in t.pending_notices():
            if n.due_at <= at:
                new = mark_notice_sent(new, n, at)
        if new != t:
            assert store.replace(t, new) is not None


def fail_for_good(store: DynamoTimerStore, server: str, at: datetime, why: str) -> None:
    """The server's shelve as a sweep leaves it after its last try failed (timers.close)."""
    (timer,) = store.timers_for("server", server)
    entry = AuditEntry(at=at, what="shelve", outcome="failed",
                       detail={"why": why, "rule": timer.rule, "by": "sweeper-a"})  # fmt: skip
    assert store.replace(timer, close(timer, "failed", entry)) is not None


def link_token(
    server: str = SERVER,
    project: str | None = PROJECT,
    expires: datetime = T0 + timedelta(days=30),
    key: str = KEY,
    resource_type: str = "server",
) -> str:
    return sign(LinkGrant(resource_type, server, project, READER, expires), key)


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 + timedelta(days=8))


@pytest.fixture
def alerts() -> RecordingNotices:
    return RecordingNotices()


@pytest.fixture
def app(moto_store: DynamoTimerStore, clock: Clock, alerts: RecordingNotices) -> Starlette:
    stop_server(moto_store)
    stop_server(moto_store, OTHER_SERVER, OTHER_PROJECT, name="someone-elses-vm")
    warn(moto_store, SERVER, T0 + timedelta(days=7))
    return create_app(web_settings(), moto_store, notices=alerts, clock=clock)


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app, base_url=BASE, follow_redirects=True) as c:
        yield c
