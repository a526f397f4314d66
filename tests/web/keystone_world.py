"""A simulated cloud whose Keystone the web tests sign in against (over HTTP), and the
people and projects in it: ann (member of alpha, reader of beta), bob (member of gamma),
olga (admin: an operator)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from reclaim_sim import Cloud, SimClock, SimConfig, SimServer

PASSWORDS = {"ann": "ann-secret", "bob": "bob-secret", "olga": "olga-secret"}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class World:
    server: SimServer
    projects: dict[str, str]  # name -> id
    users: dict[str, str]  # name -> id

    @property
    def auth_url(self) -> str:
        return self.server.auth_url


def make_world(token_ttl_seconds: int = 3600) -> tuple[Cloud, dict[str, str], dict[str, str]]:
    cloud = Cloud(
        clock=SimClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC)),
        config=SimConfig(token_ttl_seconds=token_ttl_seconds),
    )
    idn = cloud.identity
    projects = {n: idn.create_project(n).id for n in ("alpha", "beta", "gamma", "ops")}
    users = {
        n: idn.create_user(n, password=p, email=f"{n}@example.org").id for n, p in PASSWORDS.items()
    }
    idn.grant(users["ann"], projects["alpha"], "member")
    idn.grant(users["ann"], projects["beta"], "reader")
    idn.grant(users["bob"], projects["gamma"], "member")
    idn.grant(users["olga"], projects["ops"], "admin")
    return cloud, projects, users


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    cloud, projects, users = make_world()
    with SimServer(cloud) as server:
        yield World(server, projects, users)
    cloud.close()


def csrf_of(page: str) -> str:
    found = _CSRF.search(page)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def sign_in(client: TestClient, user: str, password: str | None = None, **extra: Any) -> Any:
    """Open the sign-in page and send its form as a person would; the final response."""
    page = client.get("/signin", params={"next": extra.pop("next")} if "next" in extra else None)
    form = {
        "csrf_token": csrf_of(page.text),
        "method": "password",
        "user_name": user,
        "password": PASSWORDS.get(user, "") if password is None else password,
        **extra,
    }
    if "next" not in form:
        form["next"] = re.search(r'name="next" value="([^"]*)"', page.text).group(1)  # type: ignore[union-attr]
    return client.post("/signin", data=form)


@contextmanager
def served(app: Any) -> Iterator[str]:
    """``app`` served by uvicorn on 127.0.0.1 (a free port) in a thread; yields its base
    URL and stops it afterwards."""
    import socket
    import threading

    import uvicorn

    from tests.support.waiting import wait_for

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
