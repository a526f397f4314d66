"""SIGTERM ends ``reclaim listen`` and ``reclaim run`` within their stop grace, whatever the
broker does, and no event is lost: a stop that completes exits 0 at once; one still under
way after the grace (a broker that hangs, oslo retrying its first connect) exits 70 with a
``stop_overdue`` line, and the broker redelivers what was not acknowledged.

The broker is cut or silenced through a relay (tests/bus/relay.py), not stopped: every
test run on this machine shares it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from reclaim.bus.settings import BusSettings
from reclaim.settings import PolicySettings
from reclaim.signals import STOP_GRACE, STOP_OVERDUE_STATUS
from reclaim.store import open_store
from tests.bus.conftest import delete_queue, expected_snapshot, table_snapshot, wait_for
from tests.bus.relay import Relay, relay
from tests.bus.test_runtime import RECLAIM, ListenProcess, publish_all, stream
from tests.support.dynalite import Dynalite
from tests.support.processes import lines_until
from tests.test_daemon import reclaim_run

pytestmark = [pytest.mark.rabbitmq, pytest.mark.dynalite]

#: The grace of the tests that wait for it to pass.
SHORT_GRACE = 3.0
#: What a loaded machine adds to a grace before the process is gone (scheduling, the log).
SLACK = 30.0


def stop_timed(proc: subprocess.Popen[str], within: float) -> tuple[int, float]:
    """SIGTERM; the exit status and the seconds it took (which must be under ``within``)."""
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=2 * within)
    took = time.monotonic() - started
    assert took < within, f"the stop took {took:.1f} s"
    return code, took


def overdue_line(lines: list[str]) -> dict[str, Any]:
    (line,) = [json.loads(x) for x in lines if '"stop_overdue"' in x]
    return line  # type: ignore[no-any-return]


@pytest.mark.timeout(900)  # generous waits: a loaded machine is slow
def test_sigterm_while_events_flow_stops_cleanly_and_loses_none(
    bus_settings: BusSettings, dynalite: Dynalite
) -> None:
    store_url = f"{dynalite.url}/flow-{os.getpid()}"
    events = stream(2000, servers=100)
    first = ListenProcess(bus_settings, store_url)
    sender = threading.Thread(target=publish_all, args=(bus_settings, events[1000:]))
    try:
        publish_all(bus_settings, events[:1000])
        wait_for(lambda: first.applied() >= 200, timeout=240, every=0.02)
        sender.start()  # the second half arrives while the listener stops
        code, _ = stop_timed(first.proc, within=STOP_GRACE + SLACK)
    finally:
        first.stop(signal.SIGKILL)
    assert code == 0, first.lines[-5:]
    assert first.events("stopped") and not first.events("stop_overdue")
    sender.join(600)
    assert not sender.is_alive()
    second = ListenProcess(bus_settings, store_url)
    try:
        store = open_store(store_url)
        expected = expected_snapshot(events, PolicySettings())
        wait_for(lambda: table_snapshot(store) == expected, timeout=300, every=1.0)
        # every event was applied, some twice (a batch in flight at the stop may come again)
        wait_for(lambda: first.applied() + second.applied() >= len(events), timeout=60)
    finally:
        assert second.stop() == 0
        delete_queue(bus_settings)


@pytest.mark.timeout(600)
def test_sigterm_during_a_broker_outage_stops_at_once(bus_settings: BusSettings) -> None:
    with relay() as broker:
        settings = bus_settings.model_copy(update={"transport_url": _through(broker, bus_settings)})
        listener = ListenProcess(settings, "memory://outage")
        try:
            broker.cut()
            wait_for(lambda: any(_reconnecting(line) for line in listener.lines), timeout=120)
            code, _ = stop_timed(listener.proc, within=STOP_GRACE + SLACK)
        finally:
            listener.stop(signal.SIGKILL)
    assert code == 0, listener.lines[-5:]
    assert listener.events("stopped") and not listener.events("stop_overdue")


@pytest.mark.timeout(900)
def test_a_stop_stuck_on_a_silent_broker_ends_after_its_grace_with_70_and_loses_none(
    bus_settings: BusSettings, dynalite: Dynalite
) -> None:
    store_url = f"{dynalite.url}/silent-{os.getpid()}"
    events = stream(1000, servers=100)
    with relay() as broker:
        settings = bus_settings.model_copy(update={"transport_url": _through(broker, bus_settings)})
        first = ListenProcess(settings, store_url, 0, "--stop-grace", str(SHORT_GRACE))
        try:
            publish_all(bus_settings, events[:500])
            wait_for(lambda: first.applied() >= 100, timeout=240, every=0.02)
            broker.silence()  # what the broker sends from now on is never acknowledged
            publish_all(bus_settings, events[500:])
            code, _ = stop_timed(first.proc, within=SHORT_GRACE + SLACK)
        finally:
            first.stop(signal.SIGKILL)
    # the relay is cut: the broker requeues what the first listener held unacknowledged
    assert code == STOP_OVERDUE_STATUS, first.lines[-5:]
    overdue = first.events("stop_overdue")[0]
    assert overdue["grace"] == SHORT_GRACE and overdue["level"] == "error"
    # where the stop was stuck: the main thread in the listener's stop
    assert any(f[0].startswith("bus/listener.py") and f[0].endswith(" stop")
               for f in overdue["threads"].values())  # fmt: skip
    assert not first.events("stopped")
    second = ListenProcess(bus_settings, store_url)
    try:
        store = open_store(store_url)
        expected = expected_snapshot(events, PolicySettings())
        wait_for(lambda: table_snapshot(store) == expected, timeout=300, every=1.0)
    finally:
        assert second.stop() == 0
        delete_queue(bus_settings)


@pytest.mark.timeout(600)
def test_sigterm_while_oslo_retries_its_first_connect_ends_after_the_grace(
    bus_settings: BusSettings,
) -> None:
    """Start-up: reclaim's own broker check got through, oslo's connect does not; oslo
    retries it for ever in the main thread, deaf to the stop, so the grace ends it."""
    with relay(accept=1) as broker:  # reclaim's check gets through, oslo's connect does not
        proc = subprocess.Popen(
            [RECLAIM, "listen", "--transport-url", broker.url(_vhost(bus_settings)),
             "--pool", bus_settings.pool, "--store", "memory://start", "--metrics-port", "0",
             "--durable", "--stop-grace", str(SHORT_GRACE)],
            stderr=subprocess.PIPE, text=True, env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"},
        )  # fmt: skip
        try:
            lines = lines_until(proc, "Connection failed", timeout=180)
            rest: list[str] = []
            reader = threading.Thread(target=lambda: rest.extend(proc.stderr or ()), daemon=True)
            reader.start()
            code, _ = stop_timed(proc, within=SHORT_GRACE + SLACK)
            reader.join(30)
        finally:
            proc.kill()
            proc.wait()
    log = lines + rest
    assert code == STOP_OVERDUE_STATUS, "".join(log[-5:])
    assert not any('"listening"' in line for line in log)
    assert overdue_line(log)["grace"] == SHORT_GRACE


@pytest.mark.timeout(900)
def test_reclaim_run_stuck_on_a_silent_broker_ends_after_its_grace_with_70(
    bus_settings: BusSettings, tmp_path: Path
) -> None:
    with relay() as broker:
        url = broker.url(_vhost(bus_settings))
        with reclaim_run(
            tmp_path, url, "--stop-grace", str(SHORT_GRACE), RECLAIM_BUS__POOL=bus_settings.pool,
            RECLAIM_BUS__DURABLE_QUEUES="true", RECLAIM_RUN__SWEEP_EVERY="1h",
        ) as proc:  # fmt: skip
            lines = lines_until(proc, '"listening"', timeout=400)
            broker.silence()
            rest: list[str] = []
            reader = threading.Thread(target=lambda: rest.extend(proc.stderr or ()), daemon=True)
            reader.start()
            code, _ = stop_timed(proc, within=SHORT_GRACE + SLACK)
            reader.join(30)
    log = lines + rest
    assert code == STOP_OVERDUE_STATUS, "".join(log[-5:])
    assert overdue_line(log)["grace"] == SHORT_GRACE
    delete_queue(bus_settings)


def _through(broker: Relay, settings: BusSettings) -> str:
    return broker.url(_vhost(settings))


def _vhost(settings: BusSettings) -> str:
    return settings.transport_url.rsplit("/", 1)[1]


def _reconnecting(line: str) -> bool:
    """Whether ``line`` is oslo saying it lost the broker and tries again."""
    return "impl_rabbit" in line and '"level": "error"' in line
