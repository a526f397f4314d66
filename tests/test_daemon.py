"""``reclaim run``: events in, sweeps on schedule, SIGTERM out."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reclaim import routes
from reclaim.bus.metrics import Metrics
from reclaim.daemon import Daemon
from reclaim.settings import Settings, SweepSettings
from reclaim.store import open_store
from reclaim.sweeper import OpenStackCloud, Sweeper
from reclaim_sim import Cloud, SimClock, SimConfig, SimServer
from tests.support.delivery import DeliveredNotices
from tests.support.processes import lines_until, sigterm_exit_code

BUS = "kombu+memory:////"


T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class StoreFeeder:
    """Stands in for the bus listener: the cloud's notifications go straight to the store.

    The listener itself is tested on RabbitMQ in tests/bus; here the subject is the daemon's
    schedule of sweeps around it.
    """

    def __init__(self, store: object) -> None:
        self.metrics = Metrics()
        self.store = store
        self.started = self.stopped = False

    def start(self, stop: threading.Event | None = None) -> StoreFeeder:
        self.started = True
        return self

    def stop(self) -> None:
        self.stopped = True


def test_the_periodic_sweep_acts_on_stored_timers_and_stops_on_request() -> None:
    clock = SimClock(T0)
    cloud = Cloud(clock=clock, config=SimConfig(notification_format="versioned"))
    recorder = cloud.record_notifications()
    settings = Settings(run={"sweep_every": "0.2s"}, reconcile={"interval": "0s"})
    store = open_store(f"memory://daemon-{uuid.uuid4().hex[:8]}")
    notices = DeliveredNotices(store, clock.now)
    with SimServer(cloud) as server:
        feeder = StoreFeeder(store)
        sweeper = Sweeper(
            store, OpenStackCloud(server.connect()), notices, settings.policy, "test",
            SweepSettings(min_notice_lead="0s", retry_sleep=0.01),
        )  # fmt: skip
        daemon = Daemon(feeder, sweeper, settings, clock=clock.now)  # type: ignore[arg-type]
        thread = threading.Thread(target=daemon.run)
        thread.start()
        assert daemon.ready.wait(30)
        try:
            project = cloud.identity.create_project("p")
            user = cloud.identity.create_user("u", email="u@example.org")
            cloud.identity.grant(user.id, project.id, "member")
            image = cloud.image.create_image(
                owner=None, name="img", visibility="public", status="active"
            )
            vm = cloud.compute.create_server(
                project_id=project.id, user_id=user.id, name="vm", image_id=image.id
            )
            cloud.compute.action(cloud.ctx(user.id, project.id), vm.id, "os-stop")
            for n in recorder.all():
                store.apply(routes.commands_for(n.wire(), settings.policy))
            # a day late: the first notice goes out and the shelve waits its whole 7 days
            deadline = time.monotonic() + 240  # the periodic sweeps are slow on a loaded machine
            for days, sent in ((15, 1), (6, 2), (1, 2)):
                clock.advance(timedelta(days=days))
                while len(notices.messages) < sent:
                    assert time.monotonic() < deadline, "the periodic sweep sent no notice"
                    time.sleep(0.05)
            while cloud.compute.servers[vm.id].status != "SHELVED_OFFLOADED":
                assert time.monotonic() < deadline, "the periodic sweep never shelved the server"
                time.sleep(0.05)
        finally:
            daemon.request_stop()
            thread.join(timeout=30)
        assert not thread.is_alive() and feeder.started and feeder.stopped
        kinds = [m.kind for m in notices.messages]
        assert kinds[:2] == ["shelve_upcoming", "shelve_upcoming"] and "shelved" in kinds


@contextmanager
def reclaim_run(
    tmp_path: Path, bus_url: str, *args: str, **env: str
) -> Iterator[subprocess.Popen[str]]:
    """``reclaim run [args]`` as a process against a simulated cloud, its log on stderr;
    killed after the test if it is still running."""
    cloud = Cloud(clock=SimClock(T0))
    with SimServer(cloud) as server:
        server.write_clouds_yaml(tmp_path / "clouds.yaml")
        environ = {
            **os.environ,
            "OS_CLIENT_CONFIG_FILE": str(tmp_path / "clouds.yaml"),
            "OS_CLOUD": "sim-admin",
            "RECLAIM_STORE_URL": "memory://run",
            "RECLAIM_BUS__TRANSPORT_URL": bus_url,
            "RECLAIM_BUS__METRICS_PORT": "0",
            **env,
        }
        exe = Path(sys.executable).with_name("reclaim")
        proc = subprocess.Popen(
            [str(exe), "run", *args], env=environ, stderr=subprocess.PIPE, text=True
        )
        try:
            yield proc
        finally:
            proc.kill()
            proc.wait()


@pytest.mark.timeout(900)
def test_reclaim_run_exits_0_on_sigterm(tmp_path: Path) -> None:
    # generous deadlines: on a loaded machine the start and the first sweep take minutes
    with reclaim_run(tmp_path, BUS, RECLAIM_RUN__SWEEP_EVERY="0.5s") as proc:
        lines = lines_until(proc, '"swept"', timeout=400)
        code = sigterm_exit_code(proc, within=240)
        lines.append(proc.stderr.read() if proc.stderr else "")
    log = "".join(lines)
    assert code == 0, log
    assert '"listening"' in log and '"swept"' in log and '"stopped"' in log


def test_reclaim_run_stops_at_once_on_sigterm_while_the_broker_is_unreachable(
    tmp_path: Path,
) -> None:
    from tests.support.dynalite import free_port

    unreachable = f"rabbit://guest:guest@127.0.0.1:{free_port()}/"
    with reclaim_run(tmp_path, unreachable) as proc:
        lines_until(proc, '"broker_unreachable"', timeout=180)
        code = sigterm_exit_code(proc)
    assert code == 0


def test_reclaim_run_says_loudly_at_start_that_nothing_would_deliver_its_notices(
    tmp_path: Path,
) -> None:
    """No operator, no fallback contact, and a store in which no mail was ever delivered:
    a warning block on stderr before the service starts listening."""
    with reclaim_run(tmp_path, BUS, RECLAIM_RUN__SWEEP_EVERY="1h") as proc:
        lines = lines_until(proc, '"listening"', timeout=180)
        assert sigterm_exit_code(proc, within=60) == 0
    log = "".join(lines)
    block = log[log.index("WARNING: reclaim run: notices may reach nobody") :]
    assert block.index("no operator address and no fallback contact") < block.index('"listening"')
    assert "no mail has ever been recorded as delivered" in block
