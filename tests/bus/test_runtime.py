"""The runtime under failure: signals, kill -9, the store going away, the broker restarting."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reclaim.bus.publisher import Publisher
from reclaim.bus.settings import BusSettings
from reclaim.settings import PolicySettings
from reclaim.store import DynamoTimerStore, open_store
from tests.bus.conftest import (
    delete_queue,
    expected_snapshot,
    nova_event,
    rabbitmqctl,
    table_snapshot,
    wait_for,
)
from tests.support.dynalite import Dynalite, free_port

pytestmark = [pytest.mark.rabbitmq, pytest.mark.dynalite]

RECLAIM = str(Path(sys.executable).parent / "reclaim")
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def stream(n: int, servers: int = 200) -> list[dict[str, Any]]:
    """``n`` Nova events over ``servers`` servers: stops, starts, shelves, in time order."""
    actions = [("power_off", "stopped"), ("power_on", "active"), ("shelve", "shelved_offloaded"),
               ("suspend", "suspended")]  # fmt: skip
    return [
        nova_event(
            f"srv-{i % servers:04d}",
            *actions[(i // servers) % len(actions)],
            T0 + timedelta(seconds=i),
        )
        for i in range(n)
    ]


def publish_all(settings: BusSettings, bodies: list[Any], retry: int | None = 3) -> None:
    publisher = Publisher(settings, retry=retry)
    try:
        for body in bodies:
            publisher.publish(body)
    finally:
        publisher.close()


class ListenProcess:
    """``reclaim listen`` as a child process, with its JSON log lines collected."""

    def __init__(
        self, settings: BusSettings, store_url: str, metrics_port: int = 0, *args: str
    ) -> None:
        env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
        self.proc = subprocess.Popen(
            [RECLAIM, "listen", "--transport-url", settings.transport_url, "--pool", settings.pool,
             "--store", store_url, "--metrics-port", str(metrics_port),
             "--durable" if settings.durable_queues else "--no-durable", *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        wait_for(
            lambda: (
                any('"listening"' in line for line in self.lines) or self.proc.poll() is not None
            ),
            timeout=180,  # a loaded machine takes long to start a Python process
        )
        assert self.proc.poll() is None, "\n".join(self.lines[-20:])

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def events(self, name: str) -> list[dict[str, Any]]:
        out = []
        for line in list(self.lines):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("event") == name:
                out.append(record)
        return out

    def applied(self) -> int:
        return sum(b["applied"] for b in self.events("batch"))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Send ``sig``; the exit status, which must come within ``timeout`` seconds (a stop
        takes at most its grace, 30 s by default; under load the exit took 20)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code


@pytest.mark.timeout(900)  # generous waits: a loaded machine is slow
def test_listen_command_logs_json_serves_metrics_and_exits_0_on_sigterm(
    bus_settings: BusSettings, dynalite: Dynalite, tmp_path: Path,
) -> None:  # fmt: skip
    store_url = f"{dynalite.url}/cli-{os.getpid()}"
    port = free_port()
    listener = ListenProcess(bus_settings, store_url, metrics_port=port)
    try:
        events = stream(30, servers=10)
        files = []
        for i, body in enumerate(events):
            path = tmp_path / f"{i:03d}.json"
            path.write_text(json.dumps(body))
            files.append(str(path))
        out = subprocess.run(
            [RECLAIM, "publish", "--transport-url", bus_settings.transport_url, "--durable", *files],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert "nova versioned_notifications.info" in out.stderr
        store = open_store(store_url)
        expected = expected_snapshot(events, PolicySettings())
        wait_for(lambda: table_snapshot(store) == expected, timeout=180)
        metrics = wait_for(
            lambda: (
                (m := urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode())
                and "reclaim_bus_applied_total 30.0" in m
                and m
            ),
            timeout=120,
        )
        assert "reclaim_bus_apply_seconds_bucket" in metrics
        assert "reclaim_bus_received_total 30.0" in metrics
    finally:
        code = listener.stop(signal.SIGTERM)
        delete_queue(bus_settings)
    assert code == 0
    assert listener.events("signal") == [listener.events("signal")[0]]
    assert listener.events("stopped"), listener.lines[-5:]
    for line in listener.lines:
        json.loads(line)  # every line is structured


def answers(url: str, within: float = 10) -> bool:
    """Whether an HTTP server answers at ``url`` (any status) within ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            time.sleep(0.2)
    return False


@pytest.mark.timeout(900)
def test_kill_9_mid_stream_then_restart_loses_nothing(
    bus_settings: BusSettings, tmp_path: Path
) -> None:
    # A dynalite of its own: requests cut off by the kill can bring dynalite down with them,
    # and then it is restarted on its data (an outage the listener rides out anyway).
    server = Dynalite(tmp_path / "db", port=free_port()).start()
    try:
        store_url = f"{server.url}/kill"
        events = stream(1500, servers=100)
        first = ListenProcess(bus_settings, store_url)
        try:
            # the kill comes mid-stream whatever the machine's load: the second half is
            # published only after it
            publish_all(bus_settings, events[:750])
            wait_for(lambda: first.applied() >= 200, timeout=240, every=0.02)
        finally:
            first.stop(signal.SIGKILL)
        publish_all(bus_settings, events[750:])
        if not answers(server.url):  # the kill's cut-off requests took dynalite down
            server.start()
        second = ListenProcess(bus_settings, store_url)
        try:
            expected = expected_snapshot(events, PolicySettings())
            store = open_store(store_url)
            wait_for(lambda: table_snapshot(store) == expected, timeout=300, every=1.0)
        finally:
            code = second.stop()
            delete_queue(bus_settings)
        assert code == 0
    finally:
        server.stop()  # whatever failed: a test stops what it starts


@pytest.mark.timeout(900)  # generous waits: a loaded machine is slow
def test_store_outage_keeps_messages_queued_until_it_returns(
    run_listener: Any, bus_settings: BusSettings, tmp_path: Path,
) -> None:  # fmt: skip
    server = Dynalite(tmp_path / "db", port=free_port()).start()
    try:
        store = open_store(f"{server.url}/outage")
        listener = run_listener(store=store)
        server.stop()
        events = stream(200, servers=50)
        publish_all(bus_settings, events)
        wait_for(lambda: listener.metrics.value("reclaim_bus_requeued_total") >= 200, timeout=240)
        time.sleep(1.0)
        assert listener.metrics.value("reclaim_bus_applied_total") == 0
        server.start()
        expected = expected_snapshot(events, PolicySettings())
        wait_for(lambda: table_snapshot(store) == expected, timeout=300, every=0.5)
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.timeout(900)  # generous waits: a loaded machine is slow
def test_broker_restart_mid_stream_with_durable_queues_applies_every_event(
    run_listener: Any, bus_settings: BusSettings, bus_store: DynamoTimerStore,
) -> None:  # fmt: skip
    listener = run_listener()
    events = stream(1500, servers=100)
    sender = threading.Thread(target=publish_all, args=(bus_settings, events, None))
    sender.start()
    try:
        wait_for(lambda: listener.metrics.value("reclaim_bus_applied_total") >= 200, timeout=240)
        rabbitmqctl("stop_app")
        time.sleep(2)
    finally:
        rabbitmqctl("start_app")
        rabbitmqctl("await_startup")
    sender.join(600)
    assert not sender.is_alive()
    expected = expected_snapshot(events, PolicySettings())
    wait_for(lambda: table_snapshot(bus_store) == expected, timeout=300, every=1.0)
    assert listener.metrics.value("reclaim_bus_applied_total") >= len(events)
