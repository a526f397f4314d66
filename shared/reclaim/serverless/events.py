"""Lambda event shapes: Amazon MQ for RabbitMQ and SQS batches, decoded into records. Pure.

Amazon MQ for RabbitMQ (``eventSource: aws:rmq``) groups messages by ``"<queue>::<vhost>"``
under ``rmqMessagesByQueue``; each message carries ``basicProperties``, ``redelivered`` and
``data``, the AMQP body in base64. SQS (``eventSource: aws:sqs`` on each record) carries the
body as text in ``body`` and names the record by ``messageId``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MQ_SOURCE = "aws:rmq"
SQS_SOURCE = "aws:sqs"


class EventShapeError(ValueError):
    """The Lambda event is not of the shape this function reads (a deployment mistake)."""


@dataclass(frozen=True)
class Record:
    """One message of a batch: its body (None when it could not be decoded) and where from.

    ``ref`` names the record to Lambda (the SQS ``messageId``) or to a person reading the
    dead letters (``"<queue>::<vhost>#<index>"`` for Amazon MQ). ``raw`` keeps what arrived
    when it could not be decoded, so a dead letter still shows it.
    """

    ref: str
    source: str
    body: bytes | None
    problem: str = ""
    message_id: str | None = None
    redelivered: bool = False
    raw: str = ""

    def evidence(self) -> bytes:
        """What to keep of the record: its body, or what arrived when that was unreadable."""
        return self.body if self.body is not None else self.raw.encode("utf-8")


def event_source(event: Mapping[str, Any]) -> str:
    """``aws:rmq`` or ``aws:sqs``; raises :class:`EventShapeError` for anything else."""
    if not isinstance(event, Mapping):
        raise EventShapeError(f"expected a JSON object, got {type(event).__name__}")
    if event.get("eventSource") == MQ_SOURCE or "rmqMessagesByQueue" in event:
        return MQ_SOURCE
    records = event.get("Records")
    if isinstance(records, list) and all(
        isinstance(r, Mapping) and r.get("eventSource") == SQS_SOURCE for r in records
    ):
        return SQS_SOURCE
    raise EventShapeError(
        "neither an Amazon MQ for RabbitMQ event (rmqMessagesByQueue) nor an SQS batch (Records)"
    )


def mq_records(event: Mapping[str, Any]) -> list[Record]:
    """The messages of an Amazon MQ for RabbitMQ event, queue by queue, in delivery order.

    A message whose ``data`` is missing or not base64 becomes a record with ``body=None``
    and the reason in ``problem``: one bad record must not hide the others.
    """
    by_queue = event.get("rmqMessagesByQueue")
    if not isinstance(by_queue, Mapping):
        raise EventShapeError("rmqMessagesByQueue: expected an object of queue -> messages")
    out: list[Record] = []
    for queue, messages in by_queue.items():
        if not isinstance(messages, list):
            raise EventShapeError(f"rmqMessagesByQueue[{queue!r}]: expected a list")
        for index, message in enumerate(messages):
            ref = f"{queue}#{index}"
            if not isinstance(message, Mapping):
                out.append(
                    Record(ref, queue, None, "message is not an object", raw=json.dumps(message))
                )
                continue
            props = message.get("basicProperties")
            message_id = props.get("messageId") if isinstance(props, Mapping) else None
            redelivered = bool(message.get("redelivered", False))
            data = message.get("data")
            body, problem = _b64(data)
            raw = (
                ""
                if body is not None
                else (data if isinstance(data, str) else json.dumps(message, default=str))
            )
            out.append(Record(ref, queue, body, problem, message_id, redelivered, raw))
    return out


def sqs_records(event: Mapping[str, Any]) -> list[Record]:
    """The records of an SQS batch, in order, named by ``messageId``."""
    records = event.get("Records")
    if not isinstance(records, list):
        raise EventShapeError("Records: expected a list")
    out: list[Record] = []
    for index, record in enumerate(records):
        if not isinstance(record, Mapping) or not isinstance(record.get("messageId"), str):
            raise EventShapeError(f"Records[{index}]: no messageId")
        body = record.get("body")
        source = str(record.get("eventSourceARN", SQS_SOURCE))
        if isinstance(body, str):
            out.append(
                Record(
                    record["messageId"],
                    source,
                    body.encode("utf-8"),
                    message_id=record["messageId"],
                )
            )
        else:
            out.append(
                Record(
                    record["messageId"],
                    source,
                    None,
                    "body is not text",
                    record["messageId"],
                    raw=json.dumps(body),
                )
            )
    return out


def _b64(data: Any) -> tuple[bytes | None, str]:
    if not isinstance(data, str):
        return None, "data: missing or not a string"
    try:
        return base64.b64decode(data, validate=True), ""
    except (binascii.Error, ValueError) as exc:
        return None, f"data: not base64 ({exc})"


def _body_bytes(body: bytes | str | Mapping[str, Any]) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body).encode("utf-8")


def mq_event(
    bodies: Iterable[bytes | str | Mapping[str, Any]],
    queue: str = "reclaim.notifications",
    vhost: str = "/",
    broker_arn: str = "arn:aws:mq:us-east-1:123456789012:broker:reclaim:b-00000000-0000-0000-0000-000000000000",
) -> dict[str, Any]:
    """An Amazon MQ for RabbitMQ event carrying ``bodies`` as Lambda would deliver them. Pure."""
    messages = []
    for body in bodies:
        raw = _body_bytes(body)
        messages.append(
            {
                "basicProperties": {
                    "contentType": "application/json",
                    "contentEncoding": "utf-8",
                    "headers": {},
                    "deliveryMode": 2,
                    "priority": 0,
                    "correlationId": None,
                    "replyTo": None,
                    "expiration": None,
                    "messageId": None,
                    "timestamp": None,
                    "type": None,
                    "userId": None,
                    "appId": None,
                    "clusterId": None,
                    "bodySize": len(raw),
                },
                "redelivered": False,
                "data": base64.b64encode(raw).decode("ascii"),
            }
        )
    return {
        "eventSource": MQ_SOURCE,
        "eventSourceArn": broker_arn,
        "rmqMessagesByQueue": {f"{queue}::{vhost}": messages},
    }


def sqs_event(
    bodies: Sequence[bytes | str | Mapping[str, Any]],
    queue_arn: str = "arn:aws:sqs:us-east-1:123456789012:reclaim-notifications",
) -> dict[str, Any]:
    """An SQS batch carrying ``bodies``, message ids ``m-0``, ``m-1``... Pure."""
    records = []
    for index, body in enumerate(bodies):
        records.append(
            {
                "messageId": f"m-{index}",
                "receiptHandle": f"receipt-{index}",
                "body": _body_bytes(body).decode("utf-8"),
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1772359200000",
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": "1772359200001",
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": SQS_SOURCE,
                "eventSourceARN": queue_arn,
                "awsRegion": queue_arn.split(":")[3],
            }
        )
    return {"Records": records}
