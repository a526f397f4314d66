"""The real lambda_handler run here on the sample events; the CLI around build and invoke."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from reclaim.cli import serverless as cli
from reclaim.deadletters import DeadLetterStore
from reclaim.serverless import local
from reclaim.store import open_store
from tests.serverless.conftest import LAMBDA_EVENTS, fresh_table, lambda_event

BATCHES = sorted(p.stem for p in LAMBDA_EVENTS.glob("*.json") if p.stem.startswith(("mq-", "sqs-")))


@pytest.mark.parametrize("sample", BATCHES)
def test_lambda_handler_runs_on_each_sample_batch(sample: str) -> None:
    table = fresh_table()
    response = local.invoke("notifications", lambda_event(sample), store_url=f"memory://{table}")
    store = open_store(f"memory://{table}")  # created from template.yaml's schema
    if sample.startswith("sqs-"):
        failures = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        assert failures == ({"bad-truncated-body", "bad-payload"} if "failure" in sample else set())
    else:
        letters = list(DeadLetterStore.beside(store).list())
        assert len(response["dead_lettered"]) == len(letters) == (3 if "poison" in sample else 0)
    assert list(store.pending()), "the good records' timers are in the table"


def test_function_is_found_by_logical_id_or_folder() -> None:
    assert local.find("NotificationFunction").name == "notifications"
    assert local.find("notifications").handler == "app.lambda_handler"
    with pytest.raises(local.FunctionNotFound, match="known: "):
        local.find("archiver")


def test_invoke_leaves_the_environment_as_it_found_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECLAIM_STORE_URL", raising=False)
    local.invoke(
        "notifications", lambda_event("sqs-notifications"), store_url=f"memory://{fresh_table()}"
    )
    import os

    assert "RECLAIM_STORE_URL" not in os.environ


def _app() -> typer.Typer:
    app = typer.Typer()
    cli.register(app)

    @app.command()
    def invoke(
        files: list[Path],
        function: Annotated[str, typer.Option("--lambda")],
        store: Annotated[str | None, typer.Option("--store")] = None,
    ) -> None:
        cli.invoke_lambda(function, files, store)

    return app


def test_cli_invoke_lambda_prints_the_handler_response() -> None:
    result = CliRunner().invoke(
        _app(),
        ["invoke", "--lambda", "notifications", str(LAMBDA_EVENTS / "sqs-partial-failure.json")],
    )
    assert result.exit_code == 0, result.output
    response = json.loads(result.stdout)
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [
        "bad-truncated-body",
        "bad-payload",
    ]


def test_cli_invoke_lambda_names_an_unknown_function() -> None:
    result = CliRunner().invoke(
        _app(), ["invoke", "--lambda", "archiver", str(LAMBDA_EVENTS / "schedule.json")]
    )
    assert result.exit_code == 2
    assert "no function 'archiver'" in result.output


def test_cli_build_check_says_the_template_is_sound() -> None:
    result = CliRunner().invoke(_app(), ["build", "--check"])
    assert result.exit_code == 0, result.output
    assert "template: sound" in result.output


def test_cli_build_check_lists_problems_and_fails(project_copy: Path) -> None:
    project_copy.write_text(project_copy.read_text().replace("Type: MQ", "Type: RabbitMQ"))
    result = CliRunner().invoke(_app(), ["build", "--check", "--template", str(project_copy)])
    assert result.exit_code == 1
    assert "Event Type is: RabbitMQ" in result.output


def test_cli_build_writes_the_artefacts(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        _app(), ["build", "--skip-check", "--deps", "none", "--out", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [a["artefact"] for a in report["artefacts"]] == [
        "layer",
        "mailer",
        "notifications",
        "reconcile",
        "sweeper",
        "web",
    ]
    assert (tmp_path / "layer.zip").is_file() and (
        tmp_path / "functions" / "notifications.zip"
    ).is_file()
    assert report["problems"] == []


def test_the_sweeper_takes_its_notice_durability_from_the_template() -> None:
    (fn,) = [f for f in local.functions() if f.logical_id == "SweeperFunction"]
    assert fn.environment["RECLAIM_BUS__DURABLE_QUEUES"] == "false"
