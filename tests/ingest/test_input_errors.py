"""Bad input is one line and a non-zero exit (or a dead letter), never a traceback: depth,
size, dates past the calendar, durations past any policy."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from reclaim.cli import app
from reclaim.deadletters import DeadLetterStore
from reclaim.durations import parse_duration
from reclaim.serverless import notifications
from reclaim.serverless.events import mq_event, sqs_event
from reclaim.settings import PolicySettings
from reclaim.store import open_store
from reclaim.wire import MAX_BODY
from tests.conftest import EVENTS, load_event

runner = CliRunner()
NOW = datetime(2026, 3, 2, tzinfo=UTC)
DEEP = "[" * 100_000 + "]" * 100_000


def one_line_error(result: Any, code: int = 2) -> str:
    """The one stderr line of a failed command (no traceback, no partial output)."""
    assert result.exit_code == code, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("reclaim: error: "), result.stderr
    return str(lines[0])


@pytest.mark.parametrize("command", ["invoke", "replay", "publish"])
@pytest.mark.parametrize("text", [DEEP, '{"a":' * 100_000 + "1" + "}" * 100_000])
def test_json_nested_100000_deep_is_one_line(tmp_path: Path, command: str, text: str) -> None:
    path = tmp_path / "deep.json"
    path.write_text(text)
    extra = ["--transport-url", "kombu+memory:////"] if command == "publish" else []
    line = one_line_error(runner.invoke(app, [command, *extra, str(path)]))
    assert line == f"reclaim: error: {path}: not JSON reclaim reads (nested too deeply)"


def test_a_notification_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    body: dict[str, Any] = load_event("nova/instance.power_off.end.v1")
    body["payload"]["nova_object.data"]["metadata"] = {"blob": "x" * MAX_BODY}
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(body))
    line = one_line_error(runner.invoke(app, ["invoke", str(path)]))
    assert f"over the limit of {MAX_BODY} (ingest.max_body)" in line
    replayed = runner.invoke(app, ["replay", str(path)])
    assert replayed.exit_code == 1 and "over the limit" in replayed.stderr
    assert "Traceback" not in replayed.output


def test_a_year_9999_event_through_replay_is_a_dead_letter_not_an_overflow(
    tmp_path: Path,
) -> None:
    body: dict[str, Any] = load_event("allocation/allocation.ended.v1")
    body["timestamp"] = "9999-12-31 23:59:59.999999"
    body["payload"]["end_date"] = "9999-12-31T23:59:59Z"
    path = tmp_path / "far.json"
    path.write_text(json.dumps(body))
    result = runner.invoke(app, ["replay", str(path)])
    assert result.exit_code == 1 and result.exception is not None
    assert isinstance(result.exception, SystemExit)
    assert "timestamp: 9999-12-31T23:59:59.999999Z is more than 1h after" in result.stderr


@pytest.mark.parametrize("written", ["999999999d", "99999999999999999999999d", "3651d"])
def test_a_duration_setting_past_ten_years_is_one_line(
    monkeypatch: pytest.MonkeyPatch, written: str
) -> None:
    monkeypatch.setenv("RECLAIM_POLICY__SHELVE_AFTER", written)
    result = runner.invoke(app, ["invoke", str(EVENTS / "nova/instance.power_off.end.json")])
    line = one_line_error(result)
    assert line.startswith(
        "reclaim: error: settings: policy.shelve_after: longer than the longest duration"
        " allowed, 3650d (10 years)"
    )


def test_ten_years_is_still_a_duration() -> None:
    assert parse_duration("3650d").days == 3650
    with pytest.raises(ValueError, match="longest duration"):
        parse_duration("521w4d")


def test_allocation_end_refuses_a_date_the_listener_would_dead_letter() -> None:
    project = uuid.uuid4().hex
    for date, reason in (("9999-12-31", "after its receipt"), ("0001-01-01", "before")):
        result = runner.invoke(
            app,
            ["allocation", "end", project, "--date", date, "--transport-url", "kombu+memory:////"],
        )
        assert reason in one_line_error(result) and "--date: " in result.stderr


@pytest.mark.parametrize(
    "body",
    [
        DEEP.encode(),
        b'{"oslo.version": "2.0", "oslo.message": "' + b"[" * 100_000 + b'"}',
        b"x" * (MAX_BODY + 1),
        json.dumps({**load_event("nova/instance.power_off.end.v1"), "timestamp": "9999-12-31"}),
    ],
    ids=["deep", "deep-inside", "huge", "year-9999"],
)
def test_the_lambda_function_takes_hostile_records_as_poison(body: bytes | str) -> None:
    store = open_store(f"memory://errors-{uuid.uuid4().hex[:10]}")
    letters = DeadLetterStore.beside(store)
    good = load_event("nova/instance.power_off.end.v1")
    mq = notifications.handle(mq_event([body, good]), PolicySettings(), store, letters, lambda: NOW)
    assert mq["applied"] == 1 and len(mq["dead_lettered"]) == 1, mq
    [letter] = letters.list()
    assert letter.reason and "Traceback" not in letter.reason
    sqs = notifications.handle(sqs_event([body, good]), PolicySettings(), store, letters)
    assert sqs == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}


def test_a_notification_whose_timers_the_store_refuses_is_a_dead_letter_not_a_requeue(
    tmp_path: Path,
) -> None:
    """Found by the fuzzing suite: a legacy shelve whose image URL is 300 KB makes two timers
    that each carry the image id, an item over DynamoDB's 400 KB; the listener requeued the
    batch (and every batch after it held it) for ever."""
    huge: dict[str, Any] = load_event("nova-legacy/compute.instance.shelve.end.v1")
    huge["payload"]["image_ref_url"] = "x" * 300_000
    good: dict[str, Any] = load_event("nova/instance.power_off.end.v1")
    path = tmp_path / "batch.json"
    path.write_text(json.dumps([huge, good]))
    url = f"memory://refused-{uuid.uuid4().hex[:8]}"
    result = runner.invoke(app, ["replay", "--store", url, "--json", str(path)])
    assert result.exit_code == 1, result.output
    [line] = result.stderr.splitlines()
    assert "the store refused its timers" in line and "maximum allowed size" in line
    assert {row["resource_id"] for row in json.loads(result.stdout)} == {
        good["payload"]["nova_object.data"]["uuid"]
    }
    [letter] = DeadLetterStore.beside(open_store(url)).list()
    assert letter.stage == "store"
    # The Lambda function takes it as poison as well, and stores the rest.
    store = open_store(f"memory://refused-{uuid.uuid4().hex[:8]}")
    mq = notifications.handle(
        mq_event([huge, good]), PolicySettings(), store, DeadLetterStore.beside(store), lambda: NOW
    )
    assert mq["applied"] == 1 and len(mq["dead_lettered"]) == 1
