"""Dead letters written on Lambda are the listener's: ``reclaim deadletters list|replay`` use them."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from typer.testing import CliRunner

from reclaim import routes
from reclaim.cli import app
from reclaim.commands import TimerCommand
from reclaim.deadletters import DeadLetterStore
from reclaim.serverless import local
from reclaim.settings import PolicySettings
from reclaim.store import open_store
from tests.serverless.conftest import fresh_table, lambda_event

SERVERS = {"178b0921-8f85-4257-88b6-2e743b5a975c", "0c1d7a51-5a2e-4c1f-9a3b-7a1f00000002"}


def test_lambda_dead_letters_are_listed_and_replayed_by_the_cli(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"memory://{fresh_table()}"

    def crash(notification: Any, policy: PolicySettings) -> list[TimerCommand]:
        raise KeyError("flavor")

    # A policy bug on Lambda: the batch succeeds, its records become dead letters.
    with monkeypatch.context() as patch:
        patch.setattr(routes, "decide", crash)
        response = local.invoke("NotificationFunction", lambda_event("mq-notifications"), url)
    assert len(response["dead_lettered"]) == 3 and response["applied"] == 0
    store = open_store(url)
    assert list(store.pending()) == []

    runner = CliRunner()
    listed = runner.invoke(app, ["deadletters", "list", "--store", url, "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert len(rows) == 3
    assert {r["stage"] for r in rows} == {"handler"}
    assert all("KeyError: 'flavor'" in r["reason"] for r in rows)
    assert {r["source"] for r in rows} == {"reclaim.notifications::/"}
    assert sorted(r["ref"] for r in rows) == response["dead_lettered"]
    assert all(r["event_type"] for r in rows), "the operator sees what kind of message it was"

    table = runner.invoke(app, ["deadletters", "list", "--store", url])
    assert table.exit_code == 0 and "Dead letters (3)" in table.output

    # The bug is fixed: replay runs them through the real policy into the timer table.
    replayed = runner.invoke(app, ["deadletters", "replay", "--all", "--store", url])
    assert replayed.exit_code == 0, replayed.output
    assert replayed.output.count(": replayed") == 3
    assert {t.resource_id for t in store.pending()} >= SERVERS
    assert DeadLetterStore.beside(store).list() == []
    after = runner.invoke(app, ["deadletters", "list", "--store", url, "--all", "--json"])
    assert {r["state"] for r in json.loads(after.stdout)} == {"replayed"}


def test_lambda_poison_is_listed_and_a_replay_that_still_fails_says_why() -> None:
    url = f"memory://{fresh_table()}"
    response = local.invoke("notifications", lambda_event("mq-poison"), url)
    assert len(response["dead_lettered"]) == 3
    runner = CliRunner()
    rows = json.loads(runner.invoke(app, ["deadletters", "list", "--store", url, "--json"]).stdout)
    assert {r["body_head"] for r in rows} >= {"%%% not base64 %%%", "not json at all"}
    result = runner.invoke(app, ["deadletters", "replay", "--all", "--store", url])
    assert result.exit_code == 1
    assert result.output.count(": failed") == 3
    kept = DeadLetterStore.beside(open_store(url)).list()
    assert [lt.attempts for lt in kept] == [2, 2, 2]


TOKEN = "gAAAAABlive-keystone-token-7f3e9a"


def test_lambda_dead_letters_and_response_keep_no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"memory://{fresh_table()}"
    event = lambda_event("mq-notifications")
    for records in event["rmqMessagesByQueue"].values():
        for record in records:
            body = json.loads(base64.b64decode(record["data"]))
            context = {"_context_auth_token": TOKEN, "_context_user_id": "u1"}
            if "oslo.message" in body:  # messagingv2: the context is inside the message
                body["oslo.message"] = json.dumps({**json.loads(body["oslo.message"]), **context})
            else:
                body.update(context)
            record["data"] = base64.b64encode(json.dumps(body).encode()).decode()

    def crash(notification: Any, policy: PolicySettings) -> list[TimerCommand]:
        raise KeyError(f"X-Auth-Token: {TOKEN}")

    with monkeypatch.context() as patch:
        patch.setattr(routes, "decide", crash)
        response = local.invoke("NotificationFunction", event, url)
    assert len(response["dead_lettered"]) == 3
    assert TOKEN not in json.dumps(response)
    store = open_store(url)
    stored = json.dumps(store.client.scan(TableName=store.table)["Items"])
    assert "deadletter" in stored and TOKEN not in stored and "_context_" not in stored
