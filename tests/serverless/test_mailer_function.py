"""The mailer function: lambda_handler on Amazon MQ notice batches, moto table and secrets, a
real SMTP server (aiosmtpd on 127.0.0.1) and the simulated cloud's Keystone."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from reclaim.mailer import Retry
from reclaim.mailer.examples import examples
from reclaim.serverless import local
from reclaim.serverless.events import mq_event
from reclaim.serverless.notices import envelope
from reclaim.store import open_store
from reclaim_sim import Cloud, SimServer
from reclaim_sim.server import ADMIN_CLOUD
from tests.notices.conftest import Smtp, free_port
from tests.serverless.conftest import fresh_table, lambda_event

ADA = "ada.lovelace@example.edu"
#: The sample notice's date, 2026-03-15, has passed on the function's clock (the real one):
#: its mail says so.
SHELVE = '[reclaim] Your server "analysis-vm" was due to be shelved on 2026-03-15'
ALERT = "[reclaim] ALERT: sweep stopped, circuit breaker open"


@pytest.fixture(scope="module")
def keystone() -> Iterator[SimServer]:
    """A cloud whose Keystone knows the sample notices' user and project."""
    cloud = Cloud()
    sample = examples()[0]
    assert sample.project_id and sample.user_id
    cloud.identity.create_project("sample-project", id=sample.project_id)
    cloud.identity.create_user("ada", id=sample.user_id, email=ADA)
    cloud.identity.grant(sample.user_id, sample.project_id, "member")
    with SimServer(cloud) as server:
        yield server
    cloud.close()


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    server = Smtp(free_port())
    server.start()
    yield server
    server.stop()


def _secrets(keystone: SimServer, smtp: Smtp, tmp_path: Path, **mailer: Any) -> dict[str, str]:
    client = boto3.client("secretsmanager")
    tag = uuid.uuid4().hex[:8]
    clouds = keystone.write_clouds_yaml(tmp_path / "clouds.yaml").read_text()
    smtp_settings = {"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_timeout": 5,
                     "sender": "reclaim@cloud.example.org",
                     "operators": ["ops@cloud.example.org"]}  # fmt: skip
    return {
        "CLOUDS_YAML_SECRET": client.create_secret(Name=f"clouds-{tag}", SecretString=clouds)[
            "ARN"
        ],
        "MAILER_SECRET": client.create_secret(
            Name=f"mailer-{tag}", SecretString=json.dumps(smtp_settings)
        )["ARN"],
        "OS_CLOUD": ADMIN_CLOUD,
        **mailer,
    }


def test_a_batch_is_mailed_once_even_when_smtp_fails_and_the_batch_comes_back(
    keystone: SimServer, smtp: Smtp, tmp_path: Path
) -> None:
    url = f"memory://{fresh_table()}"
    open_store(url)  # the table from template.yaml; moto serves Secrets Manager too
    env = _secrets(keystone, smtp, tmp_path)
    event = lambda_event("mailer-mq")

    smtp.stop()
    with pytest.raises(Retry, match="smtp"):
        local.invoke("MailerFunction", event, url, environment=env)
    smtp.start()
    first = local.invoke("MailerFunction", event, url, environment=env)
    again = local.invoke("MailerFunction", event, url, environment=env)

    assert first == {"received": 2, "ignored": 0, "mails": {"sent": 2}, "dead_lettered": []}
    assert again["mails"] == {"already-sent": 2}
    assert sorted(smtp.box.received()) == [(ADA, SHELVE), ("ops@cloud.example.org", ALERT)]
    (mail,) = [m for m in smtp.box.mails if m["To"].addresses[0].addr_spec == ADA]
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert text.startswith("Dear ada,") and "Sunday 15 March 2026 at 09:00 UTC" in " ".join(
        text.split()
    )


def test_an_unreadable_record_is_dead_lettered_and_the_rest_mailed(
    keystone: SimServer, smtp: Smtp, tmp_path: Path
) -> None:
    url = f"memory://{fresh_table()}"
    store = open_store(url)  # the table from template.yaml; moto serves Secrets Manager too
    env = _secrets(keystone, smtp, tmp_path)
    notice = examples()[0]
    good = envelope(notice, "reclaim.sweeper", datetime(2026, 3, 8, 9, tzinfo=UTC))
    event = mq_event([b"not json at all", good], queue="reclaim-mailer")

    response = local.invoke("MailerFunction", event, url, environment=env)

    assert response["dead_lettered"] == ["reclaim-mailer::/#0"]
    assert response["mails"] == {"sent": 1}
    assert smtp.box.received() == [(ADA, SHELVE)]
    letters = store.client.query(
        TableName=store.table, KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "deadletter"}},
    )["Items"]  # fmt: skip
    assert len(letters) == 1


def test_with_the_digest_on_the_hourly_tick_mails_each_person_once(
    keystone: SimServer, smtp: Smtp, tmp_path: Path
) -> None:
    url = f"memory://{fresh_table()}"
    open_store(url)  # the table from template.yaml; moto serves Secrets Manager too
    env = _secrets(keystone, smtp, tmp_path, RECLAIM_MAILER__DIGEST="true")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    tick = {**lambda_event("schedule"), "time": tomorrow}

    batch = local.invoke("MailerFunction", lambda_event("mailer-mq"), url, environment=env)
    assert batch["mails"] == {"kept": 1, "sent": 1}, "the alert goes out at once"
    first = local.invoke("MailerFunction", tick, url, environment=env)
    second = local.invoke("MailerFunction", tick, url, environment=env)

    assert first == {"digest": True, "digests": [{"to": ADA, "result": "sent"}]}
    assert second == {"digest": True, "digests": []}
    subject = "[reclaim] 1 notice about your resources on the research cloud"
    assert sorted(smtp.box.received()) == [(ADA, subject), ("ops@cloud.example.org", ALERT)]
