"""Reads never die on one item: an item that does not decode is skipped, counted, listed
in quarantine and dropped by an operator; everything else proceeds (moto and dynalite)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reclaim import routes
from reclaim.settings import PolicySettings
from reclaim.store import DynamoTimerStore, open_store
from reclaim.store.quarantine import Quarantine
from tests.support.builders import T0, days, server_body
from tests.support.dynalite import Dynalite
from tests.support.poison import Poison, poison

POLICY = PolicySettings()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script, as an operator runs it (stdin closed)."""
    exe = Path(sys.executable).with_name("reclaim")
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )


def _key(key: str) -> dict[str, Any]:
    return {"pk": {"S": key}, "sk": {"S": "timers"}}


def deliver(store: DynamoTimerStore, *bodies: dict) -> None:  # type: ignore[type-arg]
    for body in bodies:
        store.apply(routes.commands_for(body, POLICY))


@pytest.mark.parametrize("kind", ["year-one", "garbage"])
def test_every_read_skips_an_unreadable_item_and_reads_the_rest(
    store: DynamoTimerStore, kind: Poison
) -> None:
    deliver(store, server_body("stopped", T0, server="good-1"))
    key = poison(store, "bad-1", kind)
    deliver(store, server_body("stopped", T0, server="good-2"))

    assert {t.resource_id for t in store.pending()} == {"good-1", "good-2"}
    assert {t.resource_id for t in store.pending(T0 + days(30))} == {"good-1", "good-2"}
    assert {t.resource_id for page in store.pending_pages() for t in page} == {"good-1", "good-2"}
    assert store.timers_for("server", "bad-1") == []
    assert [k[1] for k in store.get_many([("server", "bad-1", "shelve"),
                                          ("server", "good-1", "shelve")])] == ["good-1"]  # fmt: skip
    [u] = store.unreadable()
    assert (u.key, u.reported) == (key, False)
    assert u.reason


def test_a_write_to_an_unreadable_item_leaves_it_for_the_operator(store: DynamoTimerStore) -> None:
    key = poison(store, "bad-1")
    before = store.client.get_item(
        TableName=store.table, Key={"pk": {"S": key}, "sk": {"S": "timers"}}
    )
    bad = routes.commands_for(server_body("stopped", T0, server="bad-1"), POLICY)
    result = store.apply(
        bad + routes.commands_for(server_body("stopped", T0, server="good-1"), POLICY)
    )
    assert (result.unreadable, result.written) == (len(bad), 2)
    after = store.client.get_item(
        TableName=store.table, Key={"pk": {"S": key}, "sk": {"S": "timers"}}
    )
    assert after["Item"] == before["Item"]
    assert {t.resource_id for t in store.pending()} == {"good-1"}


def test_unreadable_since_a_mark_counts_one_pass(store: DynamoTimerStore) -> None:
    poison(store, "bad-1")
    list(store.pending())
    mark = store.read_mark()
    assert store.unreadable(mark) == []
    list(store.pending())
    assert [u.key for u in store.unreadable(mark)] == ["server#bad-1"]


def test_quarantine_lists_marks_and_drops(store: DynamoTimerStore) -> None:
    deliver(store, server_body("stopped", T0, server="good-1"))
    key = poison(store, "bad-1", "garbage")
    quarantine = Quarantine.beside(store)
    [found] = list(quarantine.scan())
    assert (found.key, found.reported_at) == (key, None)

    assert quarantine.mark_reported(key, T0) is True
    assert quarantine.mark_reported(key, T0) is False  # once
    [found] = list(quarantine.scan())
    assert found.reported_at == T0.isoformat()
    list(store.pending())
    assert [u.reported for u in store.unreadable()] == [True]

    poison(store, "bad-1", "year-one")  # changed since it was found: not dropped
    assert quarantine.drop(found) is False
    [found] = list(quarantine.scan())
    assert quarantine.drop(found) is True
    assert list(quarantine.scan()) == [] and quarantine.get(key) is None
    assert [t.resource_id for t in store.pending()] == ["good-1"]
    assert quarantine.mark_reported(key, T0) is False  # gone: nothing to mark


TOKEN = "gAAAAAB-live-keystone-token-0123456789"


def test_quarantine_commands_list_show_and_drop(dynalite: Dynalite) -> None:
    url = f"{dynalite.url}/quarantine-cli"
    store = open_store(url)
    deliver(store, server_body("stopped", T0, server="good-1"))
    context = json.dumps({"_context_auth_token": TOKEN, "note": "\x1b[31mred\x1b[0m"})
    key = poison(store, "bad-1", "garbage", context={"S": context})

    listed = run("store", "quarantine", "list", "--store", url)
    assert listed.returncode == 0, listed.stderr
    assert "bad-1" in listed.stdout and "not reported yet" in listed.stdout
    as_json = json.loads(run("store", "quarantine", "list", "--store", url, "--json").stdout)
    assert [(f["key"], f["reported_at"]) for f in as_json] == [(key, None)]

    shown = run("store", "quarantine", "show", key, "--store", url)
    assert shown.returncode == 0, shown.stderr
    assert f"key:      {key}" in shown.stdout and '"doc"' in shown.stdout
    assert TOKEN not in shown.stdout and "\x1b" not in shown.stdout

    refused = run("store", "quarantine", "drop", key, "--store", url)  # no answer: not dropped
    assert refused.returncode == 1 and "not dropped" in refused.stderr
    assert TOKEN not in refused.stdout + refused.stderr
    assert store.client.get_item(TableName=store.table, Key=_key(key)).get("Item")

    dropped = run("store", "quarantine", "drop", key, "--store", url, "--yes")
    assert dropped.returncode == 0, dropped.stderr
    assert f"dropped {key}" in dropped.stdout
    assert run("store", "quarantine", "list", "--store", url).stdout.strip() == (
        "Unreadable items: nothing to show"
    )
    again = run("store", "quarantine", "show", key, "--store", url)
    assert again.returncode == 1 and f"no stored item {key}" in again.stderr
    fine = run("store", "quarantine", "drop", "server#good-1", "--store", url, "--yes")
    assert fine.returncode == 1 and "reads fine: it is not quarantined" in fine.stderr
    assert [t.resource_id for t in store.pending()] == ["good-1"]


def test_every_read_command_on_dynalite_reads_past_it(dynalite: Dynalite) -> None:
    url = f"{dynalite.url}/quarantine-reads"
    store = open_store(url)
    deliver(store, server_body("stopped", T0, server="good-1"))
    poison(store, "bad-1")
    for args in (["timers", "list"], ["plan", "--now", T0.isoformat()]):
        out = run(*args, "--store", url)
        assert out.returncode == 0, out.stderr
        assert "good-1" in out.stdout
        assert "1 stored item(s) unreadable, skipped: server#bad-1" in out.stdout
