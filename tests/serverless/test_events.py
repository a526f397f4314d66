"""Decoding Lambda's Amazon MQ for RabbitMQ and SQS events (shapes as AWS documents them)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from reclaim import routes
from reclaim.serverless.events import (
    EventShapeError,
    event_source,
    mq_event,
    mq_records,
    sqs_event,
    sqs_records,
)
from tests.serverless.conftest import lambda_event

#: The record shape of AWS's sample Amazon MQ for RabbitMQ event (Lambda developer guide).
AWS_SAMPLE: dict[str, Any] = {
    "eventSource": "aws:rmq",
    "eventSourceArn": "arn:aws:mq:us-west-2:111122223333:broker:test:b-9bcfa592-423a-4942-879d-eb284b418fc8",
    "rmqMessagesByQueue": {
        "pizzaQueue::/": [
            {
                "basicProperties": {
                    "contentType": "text/plain",
                    "contentEncoding": None,
                    "headers": {"header1": {"bytes": [118, 97, 108, 117, 101, 49]}},
                    "deliveryMode": 1,
                    "priority": 34,
                    "correlationId": None,
                    "replyTo": None,
                    "expiration": "60000",
                    "messageId": None,
                    "timestamp": "Jan 1, 1970, 12:33:41 AM",
                    "type": None,
                    "userId": "AIDACKCEVSQ6C2EXAMPLE",
                    "appId": None,
                    "clusterId": None,
                    "bodySize": 80,
                },
                "redelivered": False,
                "data": "eyJ0aW1lb3V0IjowLCJkYXRhIjoiQ1pybWYwR3c4T3Y0YnFMUXhENEUifQ==",
            }
        ]
    },
}


def test_aws_sample_mq_event_decodes_to_its_body() -> None:
    (record,) = mq_records(AWS_SAMPLE)
    assert record.source == "pizzaQueue::/"
    assert json.loads(record.body or b"") == {"timeout": 0, "data": "CZrmf0Gw8Ov4bqLQxD4E"}
    assert record.ref == "pizzaQueue::/#0" and not record.redelivered


def test_sample_mq_events_have_the_documented_shape() -> None:
    for name in ("mq-notifications", "mq-poison"):
        event = lambda_event(name)
        assert event["eventSource"] == "aws:rmq"
        assert event["eventSourceArn"].startswith("arn:aws:mq:")
        for queue, messages in event["rmqMessagesByQueue"].items():
            assert "::" in queue
            for message in messages:
                assert set(message) == set(AWS_SAMPLE["rmqMessagesByQueue"]["pizzaQueue::/"][0])
                assert set(message["basicProperties"]) == set(
                    AWS_SAMPLE["rmqMessagesByQueue"]["pizzaQueue::/"][0]["basicProperties"]
                )


def test_mq_records_keep_queue_order_across_queues() -> None:
    event = mq_event(["a", "b"], queue="q1")
    event["rmqMessagesByQueue"].update(
        mq_event(["c"], queue="q2", vhost="cloud")["rmqMessagesByQueue"]
    )
    records = mq_records(event)
    assert [(r.source, r.body) for r in records] == [
        ("q1::/", b"a"),
        ("q1::/", b"b"),
        ("q2::cloud", b"c"),
    ]


def test_both_oslo_wire_forms_reach_the_parser_unchanged() -> None:
    parsed = [routes.parse(r.body or b"") for r in mq_records(lambda_event("mq-notifications"))]
    types = [n.event_type if n else None for n in parsed]
    assert types == [
        "instance.power_off.end",
        "compute.instance.suspend.end",
        "allocation.ended",
        None,
    ]


def test_undecodable_data_becomes_a_record_with_its_problem() -> None:
    event = mq_event(["fine"])
    event["rmqMessagesByQueue"]["reclaim.notifications::/"].append({"redelivered": True})
    good, missing = mq_records(event)
    assert good.body == b"fine"
    assert missing.body is None and "data" in missing.problem and missing.redelivered


def test_sqs_records_are_named_by_message_id() -> None:
    records = sqs_records(sqs_event(["x", b"y"]))
    assert [(r.ref, r.body) for r in records] == [("m-0", b"x"), ("m-1", b"y")]


@pytest.mark.parametrize(
    "event",
    [{}, {"Records": [{"eventSource": "aws:s3"}]}, {"detail-type": "Scheduled Event"}, []],
    ids=["empty", "s3", "schedule", "list"],
)
def test_an_event_of_another_kind_is_refused(event: object) -> None:
    with pytest.raises(EventShapeError):
        event_source(event)  # type: ignore[arg-type]


def test_event_source_tells_mq_from_sqs() -> None:
    assert event_source(lambda_event("mq-notifications")) == "aws:rmq"
    assert event_source(lambda_event("sqs-notifications")) == "aws:sqs"
    assert base64.b64decode(
        lambda_event("mq-notifications")["rmqMessagesByQueue"]["reclaim.notifications::/"][0][
            "data"
        ]
    )
