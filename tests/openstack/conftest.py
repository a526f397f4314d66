"""The real-cloud tier: one real OpenStack (tests/openstack/harness.py) for the session.

Every test here is marked ``openstack``; the cloud starts once, at the first test that asks
for it, and stops (its RabbitMQ too, databases dropped) at the end of the session.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kombu
import pytest

from reclaim.store import open_store
from tests.openstack import harness
from tests.support import waiting
from tests.support.bus_tap import BusTap
from tests.support.delivery import record_delivered
from tests.support.dynalite import Dynalite

RECLAIM = str(Path(sys.executable).parent / "reclaim")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.openstack)
            item.add_marker(pytest.mark.slow)
            # the real services are slow on a loaded machine
            item.add_marker(pytest.mark.timeout(1500))


def wait_for(predicate: Callable[[], Any], timeout: float = 180, every: float = 0.5) -> Any:
    """:func:`tests.support.waiting.wait_for` with the real services' deadlines: they are
    slow on a loaded machine."""
    return waiting.wait_for(predicate, timeout, every)


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Run]:
    """The real cloud for the session (a clear one-line failure when it cannot start).

    ``RECLAIM_OPENSTACK_DIR`` names a cloud already started with ``python -m
    tests.openstack.harness up --dir D``: the tests use it and leave it running."""
    given = os.environ.get("RECLAIM_OPENSTACK_DIR")
    if given:
        yield harness.Run.load(Path(given))
        return
    directory = tmp_path_factory.mktemp("openstack")
    try:
        run = harness.up(directory, log=lambda m: print(m, file=sys.stderr))
    except harness.HarnessError as exc:
        pytest.fail(f"the real cloud did not start: {exc}", pytrace=False)
    yield run
    harness.down(directory, log=lambda _m: None)


@pytest.fixture(scope="session")
def admin(cloud: harness.Run) -> Any:
    """openstacksdk Connection as the cloud's admin."""
    import openstack.config
    import openstack.connection

    config = openstack.config.OpenStackConfig(config_files=[str(cloud.clouds_yaml)])
    return openstack.connection.Connection(config=config.get_one("openstack-admin"))


@pytest.fixture(autouse=True)
def _servers_removed(request: pytest.FixtureRequest) -> Iterator[None]:
    """The servers a test boots are deleted after it, whatever happened (unlocked first):
    a failed test leaves the cloud as it found it."""
    if "cloud" not in request.fixturenames:
        yield
        return
    admin = request.getfixturevalue("admin")
    before = {s.id for s in admin.compute.servers(all_projects=True)}
    yield
    for server in admin.compute.servers(all_projects=True):
        if server.id not in before:
            with contextlib.suppress(Exception):
                if server.is_locked:
                    admin.compute.unlock_server(server)
                admin.compute.delete_server(server, ignore_missing=True)


@pytest.fixture
def store_url(dynalite: Dynalite) -> str:
    """A fresh timer table on the session's dynalite."""
    return f"{dynalite.url}/real-{uuid.uuid4().hex[:8]}"


def reclaim_env(cloud: harness.Run, store_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECLAIM_", "OS_"))}
    env.update(cloud.exports())
    env["RECLAIM_STORE_URL"] = store_url
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    env.update(extra)
    return env


def reclaim(
    cloud: harness.Run, store_url: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one reclaim command against the real cloud; its output."""
    return subprocess.run(
        [RECLAIM, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env or reclaim_env(cloud, store_url),
    )


def reclaim_json(cloud: harness.Run, store_url: str, *args: str, **extra: str) -> Any:
    """The command's JSON output (it must exit 0, or 3 for a sweep a cap stopped). A sweep
    whose notices the broker did not take (exit 1: on a shared machine another suite's
    broker-restart test stops RabbitMQ for a few seconds) is run again once the broker
    answers, as the next scheduled sweep would: its timers stayed due."""
    env = reclaim_env(cloud, store_url, **extra)
    for _attempt in range(3):
        out = reclaim(cloud, store_url, *args, "--json", env=env)
        if not (args[0] == "sweep" and out.returncode == 1 and '"notices_failed"' in out.stdout):
            break
        wait_for(lambda: broker_answers(cloud), timeout=300, every=2)
    assert out.returncode in (0, 3), f"reclaim {' '.join(args)}: {out.returncode}\n{out.stderr}"
    return json.loads(out.stdout)


def broker_answers(cloud: harness.Run) -> bool:
    try:
        with kombu.Connection(cloud.transport_url.replace("rabbit:", "amqp:", 1)) as conn:
            conn.ensure_connection(max_retries=1, timeout=5)
        return True
    except Exception:
        return False


class Listener:
    """``reclaim listen`` on the run's RabbitMQ, its JSON log lines collected. Each listener
    has a pool (queue) of its own: it sees the events from its start on, and nothing another
    test's actions left queued."""

    def __init__(self, cloud: harness.Run, store_url: str) -> None:
        pool = f"reclaim-test-{uuid.uuid4().hex[:8]}"
        self.proc = subprocess.Popen(
            [RECLAIM, "listen", "--metrics-port", "0"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=reclaim_env(cloud, store_url, RECLAIM_BUS__POOL=pool),
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        wait_for(
            lambda: any('"listening"' in ln for ln in self.lines) or self.proc.poll() is not None
        )
        assert self.proc.poll() is None, "\n".join(self.lines[-20:])

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(60)


@pytest.fixture
def listener(cloud: harness.Run, store_url: str) -> Iterator[Listener]:
    proc = Listener(cloud, store_url)
    yield proc
    proc.stop()


def iso(delta: timedelta) -> str:
    """Now plus ``delta``, as ``--now`` takes it."""
    return (datetime.now(UTC) + delta).isoformat()


def sweep_delivered(cloud: harness.Run, store_url: str, after: timedelta, **extra: str) -> Any:
    """``reclaim sweep --now`` at ``after`` from now, then every notice it sent recorded as
    delivered, as the mailer records an accepted mail (the sweeper acts only one full lead
    after the first warning that reached someone); the sweep's JSON report."""
    report = reclaim_json(cloud, store_url, "sweep", "--now", iso(after), **extra)
    store = open_store(store_url)
    for timer in store.pending():
        record_delivered(store, timer)
    return report


def timers(cloud: harness.Run, store_url: str) -> list[dict[str, Any]]:
    """The store's pending actions and notices (``reclaim timers list --json``)."""
    out = reclaim(cloud, store_url, "timers", "list", "--json")
    if out.returncode != 0:  # the table appears with the listener's first write
        return []
    data = json.loads(out.stdout)
    return list(data if isinstance(data, list) else data.get("timers", []))


@pytest.fixture
def tap(cloud: harness.Run) -> Iterator[BusTap]:
    bus = BusTap(cloud.transport_url)
    yield bus
    bus.close()


@contextmanager
def paused(cloud: harness.Run, process: str) -> Iterator[None]:
    """One of the cloud's processes stopped (SIGSTOP to its process group, by its pid: an
    API's gunicorn worker with it) for the block: a hung service, as real clouds have them."""
    pid = cloud.pids[process]
    os.killpg(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(pid, signal.SIGCONT)


def mutating(lines: dict[str, list[str]]) -> list[str]:
    """The requests openstacksdk clients (reclaim; the tests' own wait meanwhile) sent that
    change something, Keystone's logins (POST /v3/auth/tokens) apart. The services' own
    calls to each other (nova-compute releasing a deleted server's Placement allocations
    minutes later on a loaded machine) carry their own user agents and are left out."""
    return [
        line
        for service in lines.values()
        for line in service
        if MUTATING.search(line) and "/v3/auth/tokens" not in line and "openstacksdk" in line
    ]


class AccessLog:
    """The requests the services answered from a point on (their gunicorn access logs)."""

    def __init__(self, cloud: harness.Run) -> None:
        self.cloud = cloud
        self.start = {k: len(v) for k, v in access_log(cloud).items()}

    def since(self) -> dict[str, list[str]]:
        return {k: v[self.start.get(k, 0) :] for k, v in access_log(self.cloud).items()}


MUTATING = re.compile(r'"(POST|PUT|PATCH|DELETE) ')


def access_log(cloud: harness.Run) -> dict[str, list[str]]:
    """Each API's gunicorn access log lines so far."""
    logs = cloud.path / "logs"
    return {
        service: (logs / f"{service}-access.log").read_text().splitlines()
        for service in harness.WSGI
        if (logs / f"{service}-access.log").exists()
    }


def server_status(admin: Any, server_id: str) -> str | None:
    """The server's status as Nova shows it (None once it is gone)."""
    server = admin.compute.find_server(server_id, ignore_missing=True, all_projects=True)
    return None if server is None else str(server.status)


#: the password of every user the tests make (the cloud is a throwaway one on 127.0.0.1)
PASSWORD = "test-user-pw"


def user_entry(cloud: harness.Run, user: str, project: str) -> dict[str, Any]:
    """A clouds.yaml entry (and openstacksdk Connection arguments) for ``user`` in
    ``project``, both in the Default domain."""
    return {
        "auth": {
            "auth_url": cloud.auth_url,
            "username": user,
            "password": PASSWORD,
            "project_name": project,
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
        "region_name": harness.REGION,
        "identity_api_version": 3,
    }


def member_of(cloud: harness.Run, admin: Any, name: str) -> tuple[Any, Any]:
    """A new project ``name``, a user ``<name>-user`` with the member role on it, and an
    openstacksdk Connection as that user: the project and the connection."""
    import openstack.connection

    project = admin.identity.create_project(name=name, domain_id="default")
    user = admin.identity.create_user(name=f"{name}-user", password=PASSWORD, domain_id="default")
    member = admin.identity.find_role("member", ignore_missing=False)
    admin.identity.assign_project_role_to_user(project, user, member)
    return project, openstack.connection.Connection(**user_entry(cloud, user.name, name))


def boot(admin: Any, name: str, *, project_id: str | None = None, **extra: Any) -> Any:
    """A server from the harness's image and flavor, ACTIVE."""
    image = admin.image.find_image("reclaim-test-image", ignore_missing=False)
    server = admin.compute.create_server(
        name=name, image_id=image.id, flavor_id="reclaim-tiny", networks="none", **extra
    )
    return admin.compute.wait_for_server(server, status="ACTIVE", wait=300, interval=1)


@pytest.fixture(scope="session")
def dynalite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dynalite]:
    server = Dynalite(tmp_path_factory.mktemp("dynalite")).start()
    yield server
    server.stop()
