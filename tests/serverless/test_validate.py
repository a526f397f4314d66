"""template.yaml checked as AWS would check it; planted mistakes are each caught."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reclaim.serverless import local
from reclaim.serverless.validate import load, translate, validate
from reclaim.settings import load_settings
from reclaim.store.schema import create_table_request
from tests.serverless.conftest import TEMPLATE

MQ_EVENT = """      Events:
        Notifications:
          Type: MQ"""
SCHEDULE = """      Events:
        Tick:
          Type: Schedule
          Properties:
            Schedule: "{expr}"
        Notifications:
          Type: MQ"""


@pytest.fixture(scope="module")
def cloudformation() -> dict[str, Any]:
    return translate(load(TEMPLATE))


def test_template_is_sound() -> None:
    assert validate(TEMPLATE) == []


def _replace(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, f"the template no longer contains {old!r}"
        return text.replace(old, new, 1)

    return edit


MISTAKES: dict[str, tuple[Callable[[str], str], str, str]] = {
    "wrong event type": (
        _replace("          Type: MQ", "          Type: RabbitMQ"),
        "sam",
        "Event Type is: RabbitMQ",
    ),
    "MQ event without its queue": (
        _replace("            Queues:\n              - !Ref BrokerQueue\n", ""),
        "events",
        "needs Queues with one queue",
    ),
    "rate with a singular unit": (
        _replace(MQ_EVENT, SCHEDULE.format(expr="rate(5 minute)")),
        "cfn-lint E3027",
        "minute",
    ),
    "cron with five fields": (
        _replace(MQ_EVENT, SCHEDULE.format(expr="cron(0 12 * * ?)")),
        "cfn-lint E3027",
        "length 6",
    ),
    "schedule that is neither rate nor cron": (
        _replace(MQ_EVENT, SCHEDULE.format(expr="every 5 minutes")),
        "cfn-lint",
        "every 5 minutes",
    ),
    "handler function that does not exist": (
        _replace("    Handler: app.lambda_handler", "    Handler: app.handler"),
        "handler",
        "defines no handler()",
    ),
    "handler module that does not exist": (
        _replace("    Handler: app.lambda_handler", "    Handler: main.lambda_handler"),
        "handler",
        "no functions/notifications/main.py",
    ),
    "function folder that does not exist": (
        _replace(
            "      CodeUri: functions/notifications/\n      Events:\n        Notifications:\n          Type: MQ",
            "      CodeUri: functions/notices/\n      Events:\n        Notifications:\n          Type: MQ",
        ),
        "handler",
        "functions/notices/ is not a folder",
    ),
    "policy on a resource that does not exist": (
        _replace(
            "              Resource: !GetAtt TimerTable.Arn",
            "              Resource: !GetAtt TimerTabel.Arn",
        ),
        "cfn-lint E1010",
        "TimerTabel",
    ),
    "SQS partial batch response misspelt": (
        _replace("              - ReportBatchItemFailures", "              - ReportBatchFailures"),
        "cfn-lint",
        "ReportBatchFailures",
    ),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_planted_mistake_is_caught(mistake: str, project_copy: Path) -> None:
    edit, check, words = MISTAKES[mistake]
    project_copy.write_text(edit(project_copy.read_text()))
    problems = validate(project_copy)
    assert problems, f"{mistake}: not caught"
    assert any(p.check.startswith(check) and words in str(p) for p in problems), "\n".join(
        str(p) for p in problems
    )


def test_event_sources_fail_as_designed(cloudformation: dict[str, Any]) -> None:
    mappings = {
        name: r["Properties"]
        for name, r in cloudformation["Resources"].items()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
    }
    mq = mappings["NotificationFunctionNotifications"]
    sqs = mappings["NotificationQueueFunctionNotifications"]
    # Amazon MQ has no partial batch response: poison records are dead-lettered instead.
    assert "FunctionResponseTypes" not in mq
    assert mq["Queues"] == [{"Ref": "BrokerQueue"}]
    assert {c["Type"] for c in mq["SourceAccessConfigurations"]} == {"BASIC_AUTH", "VIRTUAL_HOST"}
    assert sqs["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # the mailer reads the notices queue of the same broker; SMTP failures fail the batch
    mailer = mappings["MailerFunctionNotices"]
    assert "FunctionResponseTypes" not in mailer
    assert mailer["Queues"] == [{"Ref": "NoticeQueue"}]
    assert mailer["EventSourceArn"] == mq["EventSourceArn"]


def test_reconcile_runs_daily_with_the_sweepers_cloud_and_condition(
    cloudformation: dict[str, Any],
) -> None:
    resources = cloudformation["Resources"]
    fn = resources["ReconcileFunction"]
    assert fn["Condition"] == resources["SweeperFunction"]["Condition"] == "HasSweeper"
    assert fn["Properties"]["Timeout"] == 900
    env = fn["Properties"]["Environment"]["Variables"]
    assert env["CLOUDS_YAML_SECRET"] == {"Ref": "CloudsSecretArn"}
    rules = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Events::Rule"]
    assert {"Ref": "ReconcileSchedule"} in [r["ScheduleExpression"] for r in rules]
    assert resources["MailerFunction"]["Condition"] == "HasMailer"


def _statements(cloudformation: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name, resource in cloudformation["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for policy in resource["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                out.append((name, statement))
    return out


def test_function_policies_name_their_resources_and_actions(cloudformation: dict[str, Any]) -> None:
    statements = _statements(cloudformation)
    assert statements
    for role, statement in statements:
        resources = (
            statement["Resource"]
            if isinstance(statement["Resource"], list)
            else [statement["Resource"]]
        )
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        assert "*" not in resources, f"{role}: wildcard resource"
        assert not any("*" in a for a in actions), f"{role}: wildcard action {actions}"
    table_actions: dict[str, set[str]] = {}
    for role, s in statements:
        if s["Resource"] == {"Fn::GetAtt": ["TimerTable", "Arn"]}:
            table_actions.setdefault(role, set()).update(s["Action"])
    # each function gets the table operations its code calls, and no other
    assert table_actions == {
        "NotificationFunctionRole": {"dynamodb:GetItem", "dynamodb:PutItem",
                                     "dynamodb:UpdateItem", "dynamodb:Query"},
        "NotificationQueueFunctionRole": {"dynamodb:GetItem", "dynamodb:PutItem",
                                          "dynamodb:Query"},
        "SweeperFunctionRole": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                                "dynamodb:Query"},
        "ReconcileFunctionRole": {"dynamodb:GetItem", "dynamodb:BatchGetItem",
                                  "dynamodb:PutItem", "dynamodb:Query"},
        "MailerFunctionRole": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                               "dynamodb:DeleteItem", "dynamodb:Query"},
        "WebFunctionRole": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                            "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:Scan"},
    }  # fmt: skip
    index = {"Fn::Sub": "${TimerTable.Arn}/index/due"}
    assert {r for r, s in statements if s["Resource"] == index} == {
        "SweeperFunctionRole", "ReconcileFunctionRole", "WebFunctionRole"
    }  # fmt: skip
    # secrets: each function reads the ones it names, the web pages their key and the cloud's
    secrets = {
        role: s["Resource"]
        for role, s in statements
        if s["Action"] == ["secretsmanager:GetSecretValue"]
    }
    assert secrets["WebFunctionRole"] == [
        {"Ref": "WebSecretArn"}, {"Ref": "CloudsSecretArn"}, {"Ref": "NoticeBrokerSecretArn"}
    ]  # fmt: skip


def test_web_pages_are_public_over_a_function_url_only_with_their_secret(
    cloudformation: dict[str, Any],
) -> None:
    resources = cloudformation["Resources"]
    fn = resources["WebFunction"]
    # no key, no cloud, no broker: no web pages (the template's rules say why)
    assert cloudformation["Conditions"]["HasWeb"] == {
        "Fn::And": [{"Condition": "HasWebSecret"}, {"Condition": "HasSweeper"}]
    }
    assert fn["Condition"] == "HasWeb"
    url = resources["WebFunctionUrl"]
    assert url["Condition"] == "HasWeb"
    assert url["Properties"] == {"TargetFunctionArn": {"Ref": "WebFunction"}, "AuthType": "NONE"}
    env = fn["Properties"]["Environment"]["Variables"]
    assert env["WEB_SECRET"] == {"Ref": "WebSecretArn"}
    assert env["CLOUDS_YAML_SECRET"] == {"Ref": "CloudsSecretArn"}
    assert env["RECLAIM_WEB__KEYSTONE_URL"] == {"Ref": "KeystoneUrl"}
    assert fn["Properties"]["Handler"] == "app.lambda_handler"
    # the mailer signs its links with the same key, to the same address
    mailer = resources["MailerFunction"]["Properties"]["Environment"]["Variables"]
    assert mailer["WEB_SECRET"] == env["WEB_SECRET"]
    assert mailer["RECLAIM_WEB__BASE_URL"] == env["RECLAIM_WEB__BASE_URL"] == {"Ref": "WebBaseUrl"}
    # the one public entry of the stack is this URL: every public permission is the web
    # function's, and only through its URL
    public = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Permission" and r["Properties"].get("Principal") == "*"
    ]
    assert len(public) == 2
    for permission in public:
        assert permission["FunctionName"] == {"Ref": "WebFunction"}
        assert (
            permission.get("FunctionUrlAuthType") == "NONE"
            or permission.get("InvokedViaFunctionUrl") is True
        )


def test_only_functions_with_code_are_in_the_template() -> None:
    folders = {fn.folder.name for fn in local.functions()}
    assert folders == {
        p.name for p in (TEMPLATE.parent / "functions").iterdir() if (p / "app.py").is_file()
    }


def test_template_environment_is_read_as_reclaim_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    fn = local.find("NotificationFunction")
    for key in [k for k in os.environ if k.startswith("RECLAIM_")]:
        monkeypatch.delenv(key)
    for key, value in fn.environment.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    assert settings.store_url == "dynamodb:///reclaim-timers"
    assert settings.policy.shelve_after.days == 14
    assert settings.policy.delete_shelved_after.days == 180
    assert settings.policy.exempt_metadata_key == "reclaim:exempt"


def test_timer_table_schema_is_what_the_store_reads() -> None:
    request = create_table_request("t")
    assert request["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    (index,) = request["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "due"
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["due_shard", "next_due"]
