"""Fixtures for reconcile tests: a simulated cloud over HTTP and helpers to feed its events."""

from __future__ import annotations

import itertools
import json
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from reclaim.bus.metrics import Metrics
from reclaim.cli.reconcile import register
from reclaim.commands import TimerCommand
from reclaim.daemon import Daemon
from reclaim.reconcile.engine import reconcile
from reclaim.routes import commands_for
from reclaim.settings import PolicySettings, Settings
from reclaim.store import DynamoTimerStore, open_store
from reclaim.store.port import ReconcileMark
from reclaim.store.reconciles import ReconcileRecord
from reclaim_sim import Cloud, Ctx, SimClock, SimConfig, SimServer
from reclaim_sim.notify import Notification as SimNotification

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
POLICY = PolicySettings()
#: The server actions a generated history takes from each vm_state (``delete`` from any).
MOVES = {
    "active": ["os-stop", "os-stop", "suspend", "shelve", "pause", "delete"],
    "stopped": ["os-start", "shelve", "delete"],
    "suspended": ["resume", "shelve", "delete"],
    "paused": ["unpause", "shelve", "delete"],
    "shelved": ["shelveOffload", "unshelve", "delete"],
    "shelved_offloaded": ["unshelve", "unshelve", "delete"],
}
_names = itertools.count(1)


def mark_reconciled(store: DynamoTimerStore, at: datetime = START) -> DynamoTimerStore:
    """Record in ``store`` that a reconcile of the whole cloud completed ``at``: an
    installation past its first reconcile, whose reconciles apply no grace by themselves."""
    ReconcileRecord.beside(store).record(ReconcileMark(at=at))
    return store


@pytest.fixture
def moto_store(moto_store: DynamoTimerStore) -> DynamoTimerStore:
    """A fresh timer table on moto, already past its first reconcile (:func:`mark_reconciled`).

    ``new_store`` is one never reconciled (a new installation).
    """
    return mark_reconciled(moto_store)


@pytest.fixture
def new_store() -> DynamoTimerStore:
    """A fresh timer table on moto that no reconcile has completed on: a new installation."""
    return open_store(f"memory://new-{next(_names)}-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def sim_server() -> Iterator[SimServer]:
    """A simulated cloud on a free port for the module; Nova notifications in both formats."""
    cloud = Cloud(
        clock=SimClock(START),
        config=SimConfig(notification_format="both", notify_on_state_change="vm_state"),
    )
    with SimServer(cloud) as server:
        yield server
    cloud.close()


@pytest.fixture
def reconcile_cli(
    sim_server: SimServer, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Result]:
    """Run ``reclaim reconcile ARGS`` against the simulated cloud (its admin entry in a
    clouds.yaml) and a fresh in-memory store."""
    clouds = sim_server.write_clouds_yaml(tmp_path / "clouds.yaml")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    monkeypatch.setenv("OS_CLOUD", "sim-admin")
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("RECLAIM_STORE_URL", f"memory://cli-{tmp_path.name}")
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # two commands: typer keeps the subcommand name
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, ["reconcile", *args])

    return invoke


@dataclass
class Project:
    """A fresh project with one user and one image in the simulated cloud."""

    cloud: Cloud
    project_id: str
    user_id: str
    image_id: str

    @property
    def ctx(self) -> Ctx:
        return Ctx(user_id=self.user_id, project_id=self.project_id, roles=("member",))

    def boot(self, name: str = "vm", **kwargs: Any) -> str:
        return self.cloud.compute.create_server(
            project_id=self.project_id,
            user_id=self.user_id,
            name=name,
            image_id=self.image_id,
            **kwargs,
        ).id

    def act(self, server_id: str, action: str) -> None:
        self.cloud.compute.action(self.ctx, server_id, action)


@pytest.fixture
def project_factory(sim_server: SimServer) -> Any:
    def make() -> Project:
        n = next(_names)
        cloud = sim_server.cloud
        p = cloud.identity.create_project(f"rec-{n}")
        u = cloud.identity.create_user(f"rec-user-{n}", email=f"rec{n}@example.org")
        cloud.identity.grant(u.id, p.id, "member")
        img = cloud.image.create_image(
            owner=p.id, name=f"img-{n}", visibility="private", status="active"
        )
        return Project(cloud, p.id, u.id, img.id)

    return make


def commands(notifications: Iterable[SimNotification]) -> list[TimerCommand]:
    """The commands the event path decides for these notifications (as the listener would)."""
    out: list[TimerCommand] = []
    for n in notifications:
        out.extend(commands_for(n.wire(), POLICY))
    return out


def deliver(store: DynamoTimerStore, notifications: Iterable[SimNotification]) -> None:
    """Apply the notifications' commands to the store, as an uninterrupted listener would."""
    cmds = commands(notifications)
    for i in range(0, len(cmds), 2000):
        store.apply(cmds[i : i + 2000])


def pending(store: DynamoTimerStore, project: str | None = None) -> dict[tuple[str, str, str], Any]:
    """The pending timers: key -> (action, due_at, notice due times)."""
    return {
        t.key: (t.action, t.due_at, tuple(sorted(n.due_at for n in t.notices)))
        for t in store.pending()
        if project is None or t.project_id == project
    }


def advance(cloud: Cloud, delta: timedelta) -> None:
    cloud.clock.advance(delta)


def periodic_reconcile(
    admin_conn: Any,
    store: DynamoTimerStore,
    settings: Settings,
    clock: Callable[[], datetime],
    caplog: pytest.LogCaptureFixture,
) -> list[tuple[int, dict[str, Any]]]:
    """One periodic reconcile of ``reclaim run`` (``Daemon.reconcile_once``, the call
    cli/run.py wires up) into ``store``: its log lines as (level, JSON)."""
    listener = type("Listener", (), {"metrics": Metrics()})()  # not the subject
    daemon = Daemon(
        listener,
        None,  # type: ignore[arg-type]  # nor is the sweeper
        settings,
        reconcile=lambda now: reconcile(admin_conn, store, settings, now),
        clock=clock,
    )
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="reclaim.bus"):
        daemon.reconcile_once()
    return [(r.levelno, json.loads(r.getMessage())) for r in caplog.records]
