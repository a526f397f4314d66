"""Fixtures shared by every test tier: stores (moto and a real dynalite) and sample events."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from reclaim.store import DynamoTimerStore, open_store
from tests.support.dynalite import Dynalite

if TYPE_CHECKING:
    from reclaim_sim import Cloud, RecordingSink, SimServer

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
CONFORMANCE = ROOT / "tests" / "conformance"

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def load_event(name: str) -> Any:
    """A sample from ``events/`` by file name (without ``.json``)."""
    return json.loads((EVENTS / f"{name}.json").read_text())


@pytest.fixture(scope="session")
def dynalite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dynalite]:
    """One real dynalite server for the session, on 127.0.0.1."""
    server = Dynalite(tmp_path_factory.mktemp("dynalite")).start()
    yield server
    server.stop()


_tables = iter(range(1_000_000))


@pytest.fixture(params=["moto", "dynalite"])
def store(request: pytest.FixtureRequest) -> DynamoTimerStore:
    """A fresh timer table on moto (in-process) and on a real dynalite server."""
    table = f"timers-{os.getpid()}-{next(_tables)}"
    if request.param == "moto":
        return open_store(f"memory://{table}")
    server: Dynalite = request.getfixturevalue("dynalite")
    return open_store(f"{server.url}/{table}")


@pytest.fixture
def moto_store() -> DynamoTimerStore:
    """A fresh timer table on moto only (fast)."""
    return open_store(f"memory://timers-{os.getpid()}-{next(_tables)}")


# -- the simulated cloud: each test directory that uses it defines ``sim_server`` ----------


@pytest.fixture(scope="module")
def sim_cloud(sim_server: SimServer) -> Cloud:
    """The simulated cloud behind the directory's ``sim_server``."""
    return sim_server.cloud


@pytest.fixture(scope="module")
def admin_conn(sim_server: SimServer) -> Any:
    """openstacksdk Connection as the cloud admin (admin role on the admin project)."""
    return sim_server.connect()


@pytest.fixture
def recorder(sim_cloud: Cloud) -> Iterator[RecordingSink]:
    """Records the notifications the simulated cloud emits during one test."""
    sink = sim_cloud.record_notifications()
    yield sink
    sim_cloud.notifier.remove_sink(sink)
