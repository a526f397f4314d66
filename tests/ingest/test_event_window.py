"""The event-time window: events (and their dates) before the floor or too far ahead of
their receipt are dead-lettered with the reason, never stored, and every read still works."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from reclaim import routes
from reclaim.bus.metrics import Metrics
from reclaim.bus.pipeline import Pipeline
from reclaim.bus.replay import replay
from reclaim.cli import app
from reclaim.deadletters import DeadLetterStore
from reclaim.serverless import notifications
from reclaim.serverless.events import mq_event, sqs_event
from reclaim.settings import IngestSettings, PolicySettings
from reclaim.store import open_store
from reclaim.wire import Bounds, OutOfWindow
from reclaim_sim import SimServer
from tests.conftest import load_event
from tests.support.reads import point_at_sim, read_commands

runner = CliRunner()
SERVER = "3c1e5a7b-9d2f-4a6c-8e0b-1d3f5a7c9e2b"  # the power_off sample's server
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the samples are stamped 2026-03-01 09:30


def stopped(timestamp: str, server: str = SERVER) -> dict[str, Any]:
    """The power_off sample (flat form) for ``server``, stamped ``timestamp``."""
    body: dict[str, Any] = load_event("nova/instance.power_off.end.v1")
    body["payload"]["nova_object.data"]["uuid"] = server
    body["timestamp"] = timestamp
    body["message_id"] = str(uuid.uuid4())
    return body


def write(tmp_path: Path, name: str, bodies: list[dict[str, Any]]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(bodies))
    return path


@pytest.fixture
def store_url() -> str:
    return f"memory://window-{uuid.uuid4().hex[:10]}"


def test_replay_dead_letters_a_year_one_event_and_every_read_still_works(
    tmp_path: Path,
    store_url: str,
    sim_server: SimServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    point_at_sim(sim_server, tmp_path, monkeypatch)
    stream = write(
        tmp_path,
        "stream.json",
        [
            stopped("2026-03-01 09:30:00.000000", "srv-before"),
            stopped("0001-01-08 00:00:00.000000", "srv-year-one"),
            stopped("2026-03-01 09:31:00.000000", "srv-after"),
        ],
    )
    result = runner.invoke(app, ["replay", "--store", store_url, "--json", str(stream)])
    assert result.exit_code == 1, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith(f"reclaim: error: {stream}: timestamp: 0001-01-08T00:00:00Z is before")
    assert "(ingest.not_before)" in line and "dead letter" in line
    stored = {row["resource_id"] for row in json.loads(result.stdout)}
    assert stored == {"srv-before", "srv-after"}  # the good events around it were stored

    letters = runner.invoke(app, ["deadletters", "list", "--store", store_url, "--json"])
    assert letters.exit_code == 0, letters.output
    [letter] = json.loads(letters.stdout)
    assert letter["stage"] == "parse" and "before the event-time floor" in letter["reason"]
    assert letter["event_type"] == "instance.power_off.end"  # read before the date was judged

    outputs = read_commands(store_url, "2026-03-20T00:00:00Z")
    assert "srv-befo" in outputs["timers list"] and "srv-year" not in outputs["timers list"]


def test_invoke_refuses_a_year_9999_event_in_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "far.json", [stopped("9999-12-31 23:59:59.000000")])
    result = runner.invoke(app, ["invoke", str(path)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"reclaim: error: {path}: timestamp: 9999-12-31T23:59:59Z is more than 1h after its "
        f"receipt at {result.stderr.split('receipt at ')[1].split(' ')[0]} (ingest.max_ahead)\n"
    )
    assert result.stdout == ""


@pytest.mark.parametrize("timestamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_an_offset_past_the_calendar_is_one_line(tmp_path: Path, timestamp: str) -> None:
    path = write(tmp_path, "edge.json", [stopped(timestamp)])
    result = runner.invoke(app, ["invoke", str(path)])
    assert result.exit_code == 2, result.output
    assert len(result.stderr.splitlines()) == 1 and "timestamp: " in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_the_skew_allowed_ahead_of_receipt_is_a_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    soon = (datetime.now(UTC) + timedelta(minutes=30)).strftime("%Y-%m-%d %H:%M:%S.%f")
    later = (datetime.now(UTC) + timedelta(hours=3)).strftime("%Y-%m-%d %H:%M:%S.%f")
    ok = runner.invoke(app, ["invoke", str(write(tmp_path, "soon.json", [stopped(soon)]))])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout), "30 minutes ahead is within the default hour"
    late = write(tmp_path, "later.json", [stopped(later)])
    refused = runner.invoke(app, ["invoke", str(late)])
    assert refused.exit_code == 2 and "(ingest.max_ahead)" in refused.stderr
    monkeypatch.setenv("RECLAIM_INGEST__MAX_AHEAD", "4h")
    assert runner.invoke(app, ["invoke", str(late)]).exit_code == 0
    monkeypatch.setenv("RECLAIM_INGEST__NOT_BEFORE", "2026-03-02")
    old = runner.invoke(
        app, ["invoke", str(write(tmp_path, "old.json", [stopped("2026-03-01 09:30:00.000000")]))]
    )
    assert old.exit_code == 2 and "floor 2026-03-02T00:00:00Z" in old.stderr


def test_every_date_of_the_payload_is_bounded_too() -> None:
    bounds = IngestSettings().bounds(NOW)
    ended = load_event("allocation/allocation.ended.v1")
    ended["payload"]["end_date"] = "0001-01-01"
    with pytest.raises(OutOfWindow, match=r"^payload.end_date: 0001-01-01T00:00:00Z is before"):
        routes.parse(ended, bounds)
    ended["payload"]["end_date"] = "9999-12-31"
    with pytest.raises(OutOfWindow, match=r"^payload.end_date: 9999-12-31T00:00:00Z is more than"):
        routes.parse(ended, bounds)
    cadf = load_event("keystone/identity.user.deleted.cadf")
    inner = json.loads(cadf["oslo.message"]) if "oslo.message" in cadf else cadf
    inner["payload"]["eventTime"] = "0001-01-01T00:00:00.000000+0000"
    with pytest.raises(OutOfWindow, match=r"^payload.event_time: "):
        routes.parse(inner, bounds)
    image = load_event("glance/image.update")
    inner = json.loads(image["oslo.message"]) if "oslo.message" in image else image
    inner["payload"]["updated_at"] = "9999-01-01T00:00:00Z"
    with pytest.raises(OutOfWindow, match=r"^payload.updated_at: "):
        routes.parse(inner, bounds)


def test_a_renewal_may_name_an_end_in_the_years_to_come() -> None:
    renewed = load_event("allocation/allocation.renewed.v1")
    renewed["payload"]["end_date"] = "2028-03-01"
    notification = routes.parse(renewed, IngestSettings().bounds(NOW))
    assert notification is not None and notification.payload.end_date.year == 2028
    renewed["payload"]["end_date"] = "9999-03-01"
    with pytest.raises(OutOfWindow, match=r"^payload.end_date: .* more than 3650d after"):
        routes.parse(renewed, IngestSettings().bounds(NOW))


def test_the_listener_pipeline_dead_letters_with_the_reason_at_its_receipt_clock() -> None:
    store = open_store(f"memory://window-{uuid.uuid4().hex[:10]}")
    letters = DeadLetterStore.beside(store)
    pipeline = Pipeline(store, letters, PolicySettings(), metrics=Metrics(), clock=lambda: NOW)
    try:
        outcome = pipeline.process(
            [
                stopped("2026-03-02 09:59:00.000000", "srv-skewed"),  # 59 min ahead: fine
                stopped("2026-03-02 10:01:00.000000", "srv-ahead"),
                stopped("2009-12-31 23:59:59.000000", "srv-old"),
            ]
        )
    finally:
        pipeline.close()
    assert outcome.applied == 1 and outcome.dead_letter_positions == [1, 2]
    assert {t.resource_id for t in store.pending()} == {"srv-skewed"}
    reasons = sorted(lt.reason for lt in letters.list())
    assert reasons == [
        "timestamp: 2009-12-31T23:59:59Z is before the event-time floor 2010-01-01T00:00:00Z"
        " (ingest.not_before)",
        "timestamp: 2026-03-02T10:01:00Z is more than 1h after its receipt at"
        " 2026-03-02T09:00:00Z (ingest.max_ahead)",
    ]
    assert {lt.received_at for lt in letters.list()} == {NOW}
    # Replayed later, a letter is judged at its own receipt: the same reason again...
    [again, _] = sorted(replay(store, PolicySettings()), key=lambda r: r["reason"], reverse=True)
    assert again["outcome"] == "failed" and "more than 1h after" in again["reason"]
    # ...until the window is widened for it.
    wider = IngestSettings(max_ahead=timedelta(hours=2))
    outcomes = {r["outcome"] for r in replay(store, PolicySettings(), ingest=wider)}
    assert outcomes == {"replayed", "failed"}
    assert {t.resource_id for t in store.pending()} == {"srv-skewed", "srv-ahead"}


def test_the_lambda_function_dead_letters_or_reports_an_event_out_of_its_window() -> None:
    store = open_store(f"memory://window-{uuid.uuid4().hex[:10]}")
    letters = DeadLetterStore.beside(store)
    bodies = [
        stopped("0001-01-08 00:00:00.000000", "srv-one"),
        stopped("2026-03-01 09:30:00.000000"),
    ]
    mq = notifications.handle(mq_event(bodies), PolicySettings(), store, letters, lambda: NOW)
    assert mq["received"] == 2 and mq["applied"] == 1 and len(mq["dead_lettered"]) == 1
    [letter] = letters.list()
    assert "before the event-time floor" in letter.reason and letter.received_at == NOW
    sqs = notifications.handle(sqs_event(bodies), PolicySettings(), store, letters, lambda: NOW)
    assert sqs == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    assert {t.resource_id for t in store.pending()} == {SERVER}


def test_bounds_without_a_receipt_apply_the_floor_only() -> None:
    Bounds().check(datetime(9000, 1, 1, tzinfo=UTC), "timestamp")
    with pytest.raises(OutOfWindow):
        Bounds().check(datetime(2009, 1, 1), "timestamp")  # naive: read as UTC
