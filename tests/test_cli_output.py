"""The listing commands' one output layer: -f, -c, --long, widths, times, empty listings."""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
import uuid
from collections.abc import Iterator
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
from reclaim.wire import parse_timestamp
from reclaim_sim import Cloud, SimClock, SimServer
from tests.conftest import EVENTS
from tests.support.poison import poison

STREAM = EVENTS / "streams" / "demo.json"
NOW = "2026-02-01T00:00:00Z"
LATER = "2027-01-01T00:00:00Z"  # every timer of the stream is due
#: When the simulated cloud shows the stream's servers running again: their timers drift.
RUNNING = "2026-03-20T00:00:00Z"
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
    letters = DeadLetterStore.beside(timers)
    for n in range(3):
        letters.keep(
            dead_letter(
                f"not json {n}",
                stage="decode",
                reason="JSONDecodeError: Expecting value: line 1 column 1 (char 0) " * 3,
                event_type="compute.instance.power_off.end",
            )
        )
    poison(timers, "0b8e2f4a-6c1d-4e3f-9a5b-7c2d4e6f8a0b", "garbage")
    return url


SERVERS = {  # the demo stream's servers
    "analysis": "3c1e5a7b-9d2f-4a6c-8e0b-1d3f5a7c9e2b",
    "twin-a": "4d2f6b8c-0e3a-4b7d-9f1c-2e4a6b8d0f3c",
    "twin-b": "5e3a7c9d-1f4b-4c8e-a02d-3f5b7c9e1a4d",
}
PROJECT = "a1f0c2d4e6b84c0e9d7f1a2b3c4d5e6f"  # theirs
ENDED = "b2e1d3c5f7a94d1f8e6a0b1c2d3e4f5a"  # the stream's ended project
USER = "1e6d4c2b0a8f4e3d9c7b5a3f1e0d8c6b"


@pytest.fixture
def named(store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The demo stream's resources in a simulated cloud, by name; two servers share the
    name ``twin``. ``OS_CLOUD`` is that cloud; the store's URL is returned."""
    cloud = Cloud(clock=SimClock(parse_timestamp(RUNNING)))
    cloud.identity.create_project("genomics-lab", id=PROJECT)
    cloud.identity.create_project("ended-lab", id=ENDED)
    cloud.identity.create_user("ana", id=USER)
    image = cloud.image.create_image(owner=PROJECT, name="img", status="active").id
    for name, sid in SERVERS.items():
        cloud.compute.create_server(
            project_id=PROJECT, user_id=USER, name=name.split("-")[0], id=sid, image_id=image
        )
    with SimServer(cloud) as sim:
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(sim.write_clouds_yaml(tmp_path / "c.yaml")))
        monkeypatch.setenv("OS_CLOUD", "sim-admin")
        yield store
    cloud.close()


#: Every listing command: its arguments (the store is added), the columns holding ids, the
#: column holding a time (every row has one), and what takes its ids (audit by default).
LISTINGS: dict[str, tuple[list[str], list[str], str | None]] = {
    "timers list": (["timers", "list"], ["resource_id", "project_id"], "due_at"),
    "plan": (["plan", "--now", NOW, "--within", "365d"], ["resource_id", "project_id"], "when"),
    "replay": (["replay", str(STREAM)], ["resource_id", "project_id"], "due_at"),
    "sweep": (["sweep", "--dry-run", "--now", LATER], ["resource_id"], None),
    "reconcile": (["reconcile", "--dry-run", "--now", RUNNING], ["resource_id"], "due"),
    "audit": (["audit", "server", SERVERS["analysis"]], [], "at"),
    "deadletters list": (["deadletters", "list"], ["id"], "received_at"),
    "store quarantine list": (["store", "quarantine", "list"], ["resource_id"], None),
}


def fits(text: str, width: int) -> bool:
    return all(len(line) <= width for line in text.splitlines())


def shown(full: str, table: str) -> bool:
    """``full`` is in the table, whole or as an abbreviation of 8 characters or more."""
    return any(len(tok) >= 8 and full.startswith(tok) for tok in re.findall(r"[\w#-]+", table))


def with_store(name: str, store: str) -> list[str]:
    args = LISTINGS[name][0]
    return [*args, "--store", store] if name != "replay" else args


@pytest.mark.parametrize("name", sorted(LISTINGS))
@pytest.mark.parametrize("width", [80, 120])
def test_a_listing_fits_the_terminal_and_cuts_no_id(named: str, name: str, width: int) -> None:
    _, id_columns, time_column = LISTINGS[name]
    args = with_store(name, named)
    table = cli(*args, columns=width)
    assert table.exit_code == 0, table.output
    assert fits(table.stdout, width), table.stdout
    for column in id_columns:
        values = cli(*args, "-f", "value", "-c", column)
        ids = set(values.stdout.split())
        assert ids and all(len(i) >= 24 for i in ids), values.stdout  # -f value: in full
        assert all(shown(i, table.stdout) for i in ids), (column, table.stdout)
    rows = json.loads(cli(*args, "-f", "json").stdout)
    assert rows, name
    if time_column:
        assert all(STAMP.match(r[time_column] or "") for r in rows), rows
    assert yaml.safe_load(cli(*args, "-f", "yaml").stdout) == rows
    long = cli(*args, "--long", columns=400)
    assert all(r[c] in long.stdout for r in rows for c in id_columns if r[c])


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


@pytest.mark.parametrize("name", [n for n in sorted(LISTINGS) if LISTINGS[n][1]])
def test_every_id_a_listing_shows_is_taken_whole_and_abbreviated(named: str, name: str) -> None:
    """audit takes the resources' ids, deadletters replay the letters', store quarantine
    show the items' keys: in full (-f value) and as the table shortens them."""
    args = with_store(name, named)
    table = cli(*args).stdout
    id_column = LISTINGS[name][1][0]
    if id_column == "resource_id" and name != "store quarantine list":
        listed = cli(*args, "-f", "value", "-c", "type", "-c", "id").stdout.splitlines()
        pairs = [(rtype, rid) for rtype, rid in (line.split() for line in listed)]
    else:
        pairs = [("", rid) for rid in cli(*args, "-f", "value", "-c", id_column).stdout.split()]
    assert pairs, name
    for rtype, rid in dict.fromkeys(pairs):
        short = next(w for w in re.findall(r"[\w#-]+", table) if len(w) >= 8 and rid.startswith(w))
        for given in {rid, short}:
            if name == "deadletters list":  # still not JSON: replayed, and failing again
                out = cli("deadletters", "replay", given, "--store", named)
                assert out.stdout.startswith(f"{rid}: failed"), (given, out.output)
            elif name == "store quarantine list":
                out = cli("store", "quarantine", "show", given, "--store", named)
                assert f"key:      server#{rid}" in out.stdout, (given, out.output)
            else:
                out = cli("audit", rtype, given, "--store", named)
                assert out.exit_code == 0, (name, rtype, given, out.output)
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
    assert none.exit_code == 1 and "no timer for server ffff" in none.output
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


def test_a_name_resolves_through_the_cloud_and_an_ambiguous_one_lists_its_ids(
    named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for rtype, name, rid in [
        ("server", "analysis", SERVERS["analysis"]),
        ("user", "ana", USER),
        ("project", "ended-lab", ENDED),
    ]:
        out = cli("audit", rtype, name, "--store", named)
        assert out.exit_code == 0, (name, out.output)
        assert out.stdout.startswith(f"{rtype} {rid}"), out.stdout
    twins = cli("audit", "server", "twin", "--store", named)
    assert twins.exit_code == 2
    assert "server name 'twin' is ambiguous, 2 have it:" in twins.output
    assert SERVERS["twin-a"] in twins.output and SERVERS["twin-b"] in twins.output
    missing = cli("audit", "server", "nowhere", "--store", named)
    assert missing.exit_code == 1
    assert "nor is it a server name in the cloud" in missing.output
    plan = ["plan", "--store", named, "--now", NOW, "--within", "365d", "-f", "json"]
    rows = json.loads(cli(*plan, "--project", "genomics-lab").stdout)
    assert rows and {r["project_id"] for r in rows} == {PROJECT}
    listed = cli("timers", "list", "--store", named, "--project", "genomics-lab", "-f", "value",
                 "-c", "project")  # fmt: skip
    assert set(listed.stdout.split()) == {PROJECT}
    nowhere = cli(*plan, "--project", "no-such-lab")
    assert nowhere.exit_code == 1
    assert "nor is it a project name in Keystone (cloud 'sim-admin')" in nowhere.output
    monkeypatch.delenv("OS_CLOUD")  # --cloud names the cloud as well
    given = cli("audit", "server", "analysis", "--store", named, "--cloud", "sim-admin")
    assert given.exit_code == 0 and given.stdout.startswith(f"server {SERVERS['analysis']}")


def test_without_a_cloud_a_name_says_how_to_name_one(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OS_CLOUD", raising=False)
    monkeypatch.delenv("OS_AUTH_URL", raising=False)
    out = cli("audit", "server", "analysis", "--store", store)
    assert out.exit_code == 1
    assert out.output == (
        "reclaim: error: no timer for server analysis (to find it by name, set OS_CLOUD to a "
        "clouds.yaml entry or give --cloud)\n"
    )
    rule = cli("audit", "security_group_rule", "ffff", "--store", store)
    assert rule.output == "reclaim: error: no timer for security_group_rule ffff\n"
