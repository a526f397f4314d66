"""The listing commands' one output layer: -f, -c, --long, widths, times, empty listings."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from datetime import UTC, datetime

import pytest
import yaml
from typer.testing import CliRunner, Result

from reclaim.cli import app
from reclaim.cli.output import short_ids
from reclaim.deadletters import DeadLetterStore, dead_letter
from reclaim.store import open_store
from reclaim.timers import AuditEntry
from tests.conftest import EVENTS

STREAM = EVENTS / "streams" / "demo.json"
NOW = "2026-02-01T00:00:00Z"
#: The one way every command writes a time.
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def cli(*args: str, columns: int = 80) -> Result:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": str(columns)})


@pytest.fixture
def store() -> str:
    """A store filled by the demo stream, one of whose servers has a history."""
    url = f"memory://output-{uuid.uuid4().hex[:8]}"
    assert cli("replay", "--store", url, str(STREAM)).exit_code == 0
    timers = open_store(url)
    first = next(t for t in timers.pending() if t.resource_type == "server")
    entry = AuditEntry(
        at=datetime(2026, 3, 15, 9, 30, 0, 539458, tzinfo=UTC),
        what=first.action,
        outcome="skipped",
        detail={
            "why": "the server is ACTIVE again: its owner restarted it before the shelve, so "
            "the rule no longer applies and its timer was closed",
            "request_ids": "req-" + str(uuid.uuid4()),
        },
    )
    assert timers.replace(first, first.model_copy(update={"history": (entry,)})) is not None
    return url


LISTINGS = {
    "timers list": (["timers", "list"], ["resource_id", "project_id"]),
    "plan": (["plan", "--now", NOW, "--within", "365d"], ["resource_id", "project_id"]),
    "replay": (["replay", str(STREAM)], ["resource_id", "project_id"]),
}


def fits(text: str, width: int) -> bool:
    return all(len(line) <= width for line in text.splitlines())


def shown(full: str, table: str) -> bool:
    """``full`` is in the table, whole or as an abbreviation of 8 characters or more."""
    return any(len(tok) >= 8 and full.startswith(tok) for tok in re.findall(r"[\w-]+", table))


@pytest.mark.parametrize("name", sorted(LISTINGS))
@pytest.mark.parametrize("width", [80, 120])
def test_a_listing_fits_the_terminal_and_cuts_no_id(store: str, name: str, width: int) -> None:
    args, id_columns = LISTINGS[name]
    with_store = [*args, "--store", store] if name != "replay" else args
    table = cli(*with_store, columns=width)
    assert table.exit_code == 0, table.output
    assert fits(table.stdout, width), table.stdout
    for column in id_columns:
        values = cli(*with_store, "-f", "value", "-c", column)
        ids = set(values.stdout.split())
        assert ids and all(len(i) >= 32 for i in ids)  # -f value: in full
        assert all(shown(i, table.stdout) for i in ids), (column, table.stdout)
    rows = json.loads(cli(*with_store, "-f", "json").stdout)
    assert rows and all(STAMP.match(r.get("due_at") or r["when"]) for r in rows)
    assert yaml.safe_load(cli(*with_store, "-f", "yaml").stdout) == rows
    long = cli(*with_store, "--long", columns=400)
    assert all(r["resource_id"] in long.stdout for r in rows)


def test_columns_choose_and_order_the_fields(store: str) -> None:
    out = cli("timers", "list", "--store", store, "-f", "csv", "-c", "id", "-c", "due")
    assert out.exit_code == 0, out.output
    rows = list(csv.reader(io.StringIO(out.stdout)))
    assert rows[0] == ["resource_id", "due_at"]
    assert all(len(r[0]) >= 32 and STAMP.match(r[1]) for r in rows[1:])
    bad = cli("timers", "list", "--store", store, "-c", "nope")
    assert bad.exit_code == 2
    assert "-c nope: no such column (columns: due_at, what," in bad.output


def test_an_empty_listing_says_so_instead_of_an_empty_frame() -> None:
    url = f"memory://empty-{uuid.uuid4().hex[:8]}"
    out = cli("timers", "list", "--store", url)
    assert (out.exit_code, out.stdout) == (0, "Pending timers: nothing to show\n")
    assert json.loads(cli("timers", "list", "--store", url, "-f", "json").stdout) == []


def test_audit_shows_a_history_in_the_one_time_format(store: str) -> None:
    server = open_store(store)
    [timer] = [t for t in server.pending() if t.history]
    args = ["audit", "server", timer.resource_id, "--store", store]
    table = cli(*args)
    assert table.exit_code == 0, table.output
    assert fits(table.stdout, 80), table.stdout
    assert "2026-03-15T09:30:00Z" in table.stdout  # the time of day, to the second
    assert "restarted it before the shelve" in " ".join(table.stdout.split())
    [row] = json.loads(cli(*args, "-f", "json").stdout)
    assert row["at"] == "2026-03-15T09:30:00Z" and row["request_ids"].startswith("req-")
    assert cli(*args, "-f", "value", "-c", "outcome").stdout == "skipped\n"


def test_dead_letters_fit_and_their_ids_are_whole_in_value_form() -> None:
    url = f"memory://letters-{uuid.uuid4().hex[:8]}"
    letters = DeadLetterStore.beside(open_store(url))
    for n in range(3):
        letters.keep(
            dead_letter(
                f"not json {n}",
                stage="decode",
                reason="JSONDecodeError: Expecting value: line 1 column 1 (char 0) " * 3,
                event_type="compute.instance.power_off.end",
                now=datetime(2026, 12, 7, 17, 3, 4, 123456, tzinfo=UTC),
            )
        )
    table = cli("deadletters", "list", "--store", url)
    assert table.exit_code == 0, table.output
    assert fits(table.stdout, 80) and "Dead letters (3)" in table.stdout
    assert "2026-12-07T17:03:04Z" in table.stdout
    ids = cli("deadletters", "list", "--store", url, "-f", "value", "-c", "id").stdout.split()
    assert len(ids) == 3 and all(len(i) == 24 and shown(i, table.stdout) for i in ids)
    rows = json.loads(cli("deadletters", "list", "--store", url, "--json").stdout)
    assert {r["received_at"] for r in rows} == {"2026-12-07T17:03:04Z"}


def test_short_ids_are_the_shortest_unique_prefixes() -> None:
    ids = ["abcdef0123", "abcdef0199", "ffff0000aaaa", "ab"]
    assert short_ids(ids) == {
        "abcdef0123": "abcdef012",
        "abcdef0199": "abcdef019",
        "ffff0000aaaa": "ffff0000",
        "ab": "ab",
    }
