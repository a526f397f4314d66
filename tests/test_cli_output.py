"""The listing commands' one output layer: -f, -c, --long, widths, times, empty listings."""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner, Result

from reclaim.cli import app
from reclaim.cli.output import short_ids
from reclaim.deadletters import DeadLetterStore, dead_letter
from reclaim.policy.servers import SHELVE
from reclaim.store import open_store
from reclaim.timers import AuditEntry
from reclaim_sim import Cloud, SimClock, SimServer
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


@pytest.mark.parametrize("name", sorted(LISTINGS))
def test_every_id_a_listing_shows_is_accepted_by_audit_whole_and_abbreviated(
    store: str, name: str
) -> None:
    args, _ = LISTINGS[name]
    with_store = [*args, "--store", store] if name != "replay" else args
    replay_store = store if name != "replay" else None
    table = cli(*with_store).stdout
    pairs = cli(*with_store, "-f", "value", "-c", "type", "-c", "id").stdout.splitlines()
    assert {p.split()[0] for p in pairs} >= {"server", "project", "user"}
    for rtype, rid in dict.fromkeys(tuple(p.split()) for p in pairs):
        short = next(w for w in re.findall(r"[\w-]+", table) if len(w) >= 8 and rid.startswith(w))
        for given in {rid, short}:
            out = cli("audit", rtype, given, "--store", replay_store or store)
            assert out.exit_code == 0, (rtype, given, out.output)
            assert out.stdout.startswith(f"{rtype} {rid}"), out.stdout


def test_an_ambiguous_prefix_lists_the_candidates_and_exits_2(store: str) -> None:
    timers = open_store(store)
    since = datetime(2026, 3, 1, tzinfo=UTC)
    for sid in ("abcd1234-0000-4000-8000-000000000001", "abcd1234-0000-4000-8000-000000000002"):
        timers.apply(SHELVE.schedule(sid, since=since, delay=timedelta(days=14), event_time=since))
    out = cli("audit", "server", "abcd1234", "--store", store)
    assert out.exit_code == 2
    assert "server id 'abcd1234' is ambiguous, 2 ids start with it:" in out.output
    assert "abcd1234-0000-4000-8000-000000000001" in out.output
    assert "abcd1234-0000-4000-8000-000000000002" in out.output
    one = cli("audit", "server", "abcd1234-0000-4000-8000-000000000002", "--store", store)
    assert one.exit_code == 0 and "shelve: pending, due 2026-03-15T00:00:00Z" in one.stdout
    longer = cli("audit", "server", "abcd1234-0000-4000-8000-0000000000", "--store", store)
    assert longer.exit_code == 2 and "2 ids start with it" in longer.output
    none = cli("audit", "server", "ffff", "--store", store)
    assert (none.exit_code, none.output) == (1, "reclaim: error: no timer for server ffff\n")
    bad_type = cli("audit", "volume", "ffff", "--store", store)
    assert bad_type.exit_code == 2 and "not one of server, project, user, image" in bad_type.output


def test_audit_help_names_every_resource_type() -> None:
    out = cli("audit", "--help", columns=200)
    assert "server, project, user, image, security_group_rule" in out.stdout


def test_plan_takes_a_project_prefix_and_refuses_a_name_it_cannot_resolve(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OS_CLOUD", raising=False)
    plan = ["plan", "--store", store, "--now", NOW, "--within", "365d"]
    project = "a1f0c2d4e6b84c0e9d7f1a2b3c4d5e6f"  # the demo stream's servers' project
    whole = json.loads(cli(*plan, "--project", project, "-f", "json").stdout)
    assert whole and {r["project_id"] for r in whole} == {project}
    assert json.loads(cli(*plan, "--project", project[:8], "-f", "json").stdout) == whole
    named = cli(*plan, "--project", "genomics")
    assert named.exit_code == 1 and named.stdout == ""
    assert "no project 'genomics'" in named.output
    assert "openstack project show genomics -f value -c id" in named.output


def test_dead_letters_replay_takes_a_prefix_and_lists_an_ambiguous_one() -> None:
    url = f"memory://letters-{uuid.uuid4().hex[:8]}"
    letters = DeadLetterStore.beside(open_store(url))
    kept = [dead_letter(f"not json {n}", stage="decode", reason="bad") for n in range(40)]
    for letter in kept:
        letters.keep(letter)
    ids = sorted(lt.id for lt in kept)
    first = ids[0]
    out = cli("deadletters", "replay", first[:10], "--store", url)
    assert out.stdout.startswith(f"{first}: failed"), out.output  # still not JSON
    clash = next(a[0] for a, b in itertools.pairwise(ids) if a[0] == b[0])  # 40 ids, 16 digits
    ambiguous = cli("deadletters", "replay", clash, "--store", url)
    assert ambiguous.exit_code == 2 and "ambiguous" in ambiguous.output
    unknown = cli("deadletters", "replay", "zz", "--store", url)
    assert unknown.exit_code == 2 and "no dead letter zz" in unknown.output


def test_plan_looks_a_project_name_up_in_keystone_when_a_cloud_is_set(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud = Cloud(clock=SimClock(datetime(2026, 3, 1, tzinfo=UTC)))
    project = "a1f0c2d4e6b84c0e9d7f1a2b3c4d5e6f"  # the demo stream's servers' project
    cloud.identity.create_project("genomics-lab", id=project)
    plan = ["plan", "--store", store, "--now", NOW, "--within", "365d", "-f", "json"]
    with SimServer(cloud) as sim:
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(sim.write_clouds_yaml(tmp_path / "c.yaml")))
        monkeypatch.setenv("OS_CLOUD", "sim-admin")
        named = cli(*plan, "--project", "genomics-lab")
        missing = cli(*plan, "--project", "no-such-lab")
    cloud.close()
    assert named.exit_code == 0, named.output
    rows = json.loads(named.stdout)
    assert rows and {r["project_id"] for r in rows} == {project}
    assert missing.exit_code == 1
    assert "nor is it a project name in Keystone (cloud 'sim-admin')" in missing.output
