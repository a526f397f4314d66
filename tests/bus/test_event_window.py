"""From RabbitMQ: an event out of its time window, or too big, is dead-lettered with the
reason while the listener keeps consuming, and every read command works afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from reclaim.bus.settings import BusSettings
from reclaim.cli import app
from reclaim.deadletters import DeadLetterStore
from reclaim.store import DynamoTimerStore
from reclaim.wire import MAX_BODY
from reclaim_sim import Cloud, SimClock, SimServer
from tests.bus.conftest import nova_event, queue_depth, wait_for
from tests.bus.test_deadletters import publish_raw, v2
from tests.support.dynalite import Dynalite
from tests.support.reads import point_at_sim, read_commands

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def sim_server() -> Iterator[SimServer]:
    cloud = Cloud(clock=SimClock(T0))
    with SimServer(cloud) as server:
        yield server
    cloud.close()


@pytest.mark.rabbitmq
@pytest.mark.dynalite
def test_a_year_one_event_from_the_bus_is_dead_lettered_and_reads_still_work(
    run_listener: Any,
    bus_settings: BusSettings,
    bus_store: DynamoTimerStore,
    dynalite: Dynalite,
    sim_server: SimServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listener = run_listener()
    year_one = nova_event("srv-year-one", "power_off", "stopped", T0)
    year_one["timestamp"] = "0001-01-08 00:00:00.000000"
    huge = nova_event("srv-huge", "power_off", "stopped", T0)
    huge["payload"]["nova_object.data"]["metadata"] = {"blob": "x" * MAX_BODY}
    good = nova_event("srv-good", "power_off", "stopped", T0)
    key = "versioned_notifications.info"
    publish_raw(
        bus_settings,
        [("nova", key, v2(body), "application/json") for body in (year_one, huge, good)],
    )
    letters_store = DeadLetterStore.beside(bus_store)
    letters = wait_for(lambda: len(found := letters_store.list()) == 2 and found)
    wait_for(lambda: bus_store.timers_for("server", "srv-good"))  # it kept consuming
    wait_for(lambda: queue_depth(bus_settings) == 0)
    reasons = sorted(letter.reason for letter in letters)
    assert reasons[0].startswith(f"body: {len(v2(huge))} bytes, over the limit of {MAX_BODY}")
    assert reasons[1] == (
        "timestamp: 0001-01-08T00:00:00Z is before the event-time floor 2010-01-01T00:00:00Z"
        " (ingest.not_before)"
    )
    assert bus_store.timers_for("server", "srv-year-one") == []
    assert listener.metrics.value("reclaim_bus_dead_lettered_total", stage="parse") == 1
    assert listener.metrics.value("reclaim_bus_dead_lettered_total", stage="decode") == 1

    url = f"{dynalite.url}/{bus_store.table}"
    listed = CliRunner().invoke(app, ["deadletters", "list", "--store", url, "--json"])
    assert listed.exit_code == 0, listed.output
    assert sorted(row["reason"] for row in json.loads(listed.stdout)) == reasons
    point_at_sim(sim_server, tmp_path, monkeypatch)
    outputs = read_commands(url, "2026-03-20T00:00:00Z")
    assert "srv-good" in outputs["timers list"] and "srv-year" not in outputs["timers list"]
