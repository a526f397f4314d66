"""Fixtures for the simulated cloud: one server per module, a fresh project per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from reclaim_sim import Cloud, SimClock, SimConfig, SimServer

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
_names = itertools.count(1)


@pytest.fixture(scope="module")
def sim_server() -> Iterator[SimServer]:
    """A simulated cloud served on a free port for the whole module, stopped afterwards.

    Frozen clock at 2026-03-01 09:00 UTC; Nova notifications in both formats with
    ``instance.update`` on vm_state changes; Keystone CADF.
    """
    cloud = Cloud(
        clock=SimClock(START),
        config=SimConfig(notification_format="both", notify_on_state_change="vm_state"),
    )
    with SimServer(cloud) as server:
        yield server
    cloud.close()


@dataclass
class Tenant:
    """A project with one member user; ``conn`` is a member-scoped Connection."""

    server: SimServer
    project_id: str
    project_name: str
    user_id: str
    user_name: str
    _conn: Any = field(default=None, repr=False)

    @property
    def conn(self) -> Any:
        if self._conn is None:
            self._conn = self.server.connect(self.user_name, self.project_name)
        return self._conn

    @property
    def cloud(self) -> Cloud:
        return self.server.cloud

    def image(self, name: str = "img", **kwargs: Any) -> str:
        kwargs.setdefault("visibility", "private")
        kwargs.setdefault("status", "active")
        return self.cloud.image.create_image(owner=self.project_id, name=name, **kwargs).id

    def boot(self, name: str = "vm", image_id: str | None = None, **kwargs: Any) -> str:
        """Create a server in-process (no HTTP) and return its id."""
        if image_id is None:
            image_id = self.image(f"{name}-image")
        return self.cloud.compute.create_server(
            project_id=self.project_id,
            user_id=self.user_id,
            name=name,
            image_id=image_id,
            **kwargs,
        ).id


@pytest.fixture
def tenant_factory(sim_server: SimServer) -> Any:
    def make(prefix: str = "proj", **project: Any) -> Tenant:
        n = next(_names)
        idn = sim_server.cloud.identity
        p = idn.create_project(f"{prefix}-{n}", **project)
        u = idn.create_user(f"user-{prefix}-{n}", email=f"user{n}@example.org")
        idn.grant(u.id, p.id, "member")
        return Tenant(sim_server, p.id, p.name, u.id, u.name)

    return make


@pytest.fixture
def tenant(tenant_factory: Any) -> Tenant:
    return tenant_factory()  # type: ignore[no-any-return]
