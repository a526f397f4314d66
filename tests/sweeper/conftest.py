"""Fixtures for sweeper tests: a simulated cloud over HTTP, seeded servers, their timers."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reclaim.policy.servers import DELETE_SHELVED, SHELVE
from reclaim.settings import PolicySettings, SweepSettings
from reclaim.store import DynamoTimerStore
from reclaim.sweeper import NoticePort, OpenStackCloud, RecordingNotices, Sweeper
from reclaim.timers import mark_notice_sent
from reclaim_sim import Cloud, SimClock, SimServer
from tests.support.delivery import ADDRESS, record_delivered

#: The sweep runs at the simulated cloud's (frozen) clock.
NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
#: Servers stopped (or shelved) this long before NOW: their timers are due.
STOPPED_AT = NOW - timedelta(days=200)
_names = itertools.count(1)


@pytest.fixture(scope="module")
def sim_server() -> Iterator[SimServer]:
    cloud = Cloud(clock=SimClock(NOW))
    with SimServer(cloud) as server:
        yield server
    cloud.close()


@pytest.fixture
def cloud_port(admin_conn: Any) -> OpenStackCloud:
    return OpenStackCloud(admin_conn)


@dataclass
class World:
    """A project in the simulated cloud, the timer store, and a way to seed both."""

    cloud: Cloud
    store: DynamoTimerStore
    project_id: str
    user_id: str
    image_id: str

    def server(self, state: str = "stopped", **kwargs: Any) -> str:
        kwargs.setdefault("updated_at", STOPPED_AT)
        return self.cloud.compute.create_server(
            project_id=kwargs.pop("project_id", self.project_id),
            user_id=self.user_id,
            name=f"vm-{next(_names)}",
            image_id=kwargs.pop("image_id", self.image_id),
            state=state,
            **kwargs,
        ).id

    def timer(
        self,
        server_id: str,
        rule: str = "shelve",
        since: datetime = STOPPED_AT,
        *,
        delivered: bool = True,
        notices: bool = True,
    ) -> None:
        """A timer as events would set it; ``delivered``: its notices due before NOW went out
        on time and the mailer recorded them accepted (as a running installation would);
        without ``notices``, the rule warns nobody (a policy configured without notices)."""
        r = SHELVE if rule == "shelve" else DELETE_SHELVED
        policy = PolicySettings()
        delay = policy.shelve_after if rule == "shelve" else policy.delete_shelved_after
        offsets = policy.shelve_notices if rule == "shelve" else policy.delete_notices
        offsets = offsets if notices else ()
        self.store.apply(
            r.schedule(
                server_id,
                since=since,
                delay=delay,
                event_time=since,
                notices=tuple((r.notice or "", d) for d in offsets),
                project_id=self.project_id,
                user_id=self.user_id,
                detail={"state": "stopped"},
            )
        )
        if delivered and notices:
            deliver_on_time(self.store, "server", server_id, r.id, self.cloud, NOW)

    def mutations(self, server_ids: set[str] | None = None) -> list[Any]:
        """Mutating requests the cloud served (optionally only on these servers)."""
        out = self.cloud.requests.mutating_requests()
        if server_ids is None:
            return out
        return [r for r in out if any(s in r.path for s in server_ids)]

    def shelves(self, server_id: str) -> int:
        """Successful shelve requests on one server."""
        return sum(
            1
            for r in self.cloud.requests.filter(method="POST", path_regex=f"{server_id}/action")
            if r.status == 202
        )


@pytest.fixture
def world(sim_cloud: Cloud, moto_store: DynamoTimerStore) -> World:
    p = sim_cloud.identity.create_project(f"proj-{next(_names)}")
    u = sim_cloud.identity.create_user(f"user-{next(_names)}", email="u@example.org")
    sim_cloud.identity.grant(u.id, p.id, "member")
    image = sim_cloud.image.create_image(
        owner=p.id, name="img", visibility="private", status="active"
    )
    sim_cloud.requests.clear()
    sim_cloud.faults.clear()
    return World(sim_cloud, moto_store, p.id, u.id, image.id)


@pytest.fixture
def cli_store(
    world: World, sim_server: SimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The sweeper commands' environment: the simulated cloud as ``OS_CLOUD``, notices on an
    in-memory bus; the world's store URL, for ``--store``."""
    sim_server.write_clouds_yaml(tmp_path / "clouds.yaml")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(tmp_path / "clouds.yaml"))
    monkeypatch.setenv("OS_CLOUD", "sim-admin")
    monkeypatch.setenv("RECLAIM_BUS__TRANSPORT_URL", "kombu+memory:////")
    return f"memory://{world.store.table}"


def deliver_on_time(
    store: DynamoTimerStore,
    resource_type: str,
    resource_id: str,
    rule: str,
    cloud: Cloud | None = None,
    before: datetime = NOW,
    address: str = ADDRESS,
) -> None:
    """Record the timer's notices due before ``before`` as sent on time and accepted by the
    SMTP server (the mail ledger records the mailer writes)."""
    (timer,) = [t for t in store.timers_for(resource_type, resource_id) if t.rule == rule]
    done = timer
    for n in timer.notices:
        if n.due_at <= before and n.sent_at is None:
            done = mark_notice_sent(done, n, n.due_at)
    if done is not timer:
        assert store.replace(timer, done) is not None
        newly = [
            n
            for old, n in zip(timer.notices, done.notices, strict=True)
            if old.sent_at != n.sent_at
        ]
        record_delivered(store, done, newly, address)


FAST = SweepSettings(retry_sleep=0.01, parallelism=4, min_notice_lead=timedelta(0))


def make_sweeper(
    world: World,
    cloud_port: Any,
    notices: NoticePort | None = None,
    owner: str = "sweeper-a",
    **settings: Any,
) -> Sweeper:
    merged = FAST.model_copy(update=settings)
    return Sweeper(
        world.store,
        cloud_port,
        notices if notices is not None else RecordingNotices(),
        PolicySettings(),
        owner,
        merged,
    )
