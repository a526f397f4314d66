"""No secret is printed, logged, counted or stored: a broker password with reserved
characters (percent-encoded, as the README says), and the Keystone token oslo copies into
every notification as ``_context_auth_token``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kombu
import pytest

from reclaim.store import DynamoTimerStore
from tests.bus.conftest import RABBIT, nova_event, rabbitmqctl, wait_for
from tests.support.dynalite import free_port
from tests.support.processes import lines_until, sigterm_exit_code

RECLAIM = str(Path(sys.executable).parent / "reclaim")
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
#: Every character a URL reserves, in a password.
PASSWORD = "Pa,ss/wo@rd:50%-zq7"
ENCODED = "Pa%2Css%2Fwo%40rd%3A50%25-zq7"
TOKEN = "gAAAAABlive-keystone-token-7f3e9a"
#: Bits of the secrets that must appear nowhere (the password whole, encoded, or in part).
SECRETS = (PASSWORD, ENCODED, "wo@rd", "50%-zq7", "Pa,ss", "zq7", TOKEN, "live-keystone")


def leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


@pytest.fixture
def broker_user(vhost: str) -> Any:
    """A RabbitMQ user whose password holds , / @ : and %."""
    name = f"reclaim-{uuid.uuid4().hex[:8]}"
    rabbitmqctl("add_user", name, PASSWORD)
    rabbitmqctl("set_permissions", "-p", vhost, name, ".*", ".*", ".*")
    yield name
    rabbitmqctl("delete_user", name, check=False)


def with_context(body: dict[str, Any]) -> bytes:
    """A messagingv2 envelope whose message carries the caller's context, token included."""
    body = {**body, "_context_auth_token": TOKEN, "_context_user_id": "u1",
            "_context_request_id": "req-1"}  # fmt: skip
    return json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(body)}).encode()


@pytest.mark.rabbitmq
@pytest.mark.dynalite
def test_listen_with_a_percent_encoded_password_keeps_every_secret_to_itself(
    vhost: str, broker_user: str, bus_store: DynamoTimerStore
) -> None:
    metrics = free_port()
    url = f"rabbit://{broker_user}:{ENCODED}@{RABBIT}/{vhost}"
    pool = f"reclaim-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "RECLAIM_BUS__TRANSPORT_URL": url}
    proc = subprocess.Popen(
        [RECLAIM, "listen", "--store", f"{bus_store.client.meta.endpoint_url}/{bus_store.table}",
         "--pool", pool, "--metrics-port", str(metrics), "--durable"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        logged = lines_until(proc, '"listening"', timeout=60)
        good = nova_event("srv-good", "power_off", "stopped", T0)
        bad = nova_event("srv-bad", "power_off", "stopped", T0)
        bad["payload"] = {"nova_object.data": {"uuid": "srv-bad"}}  # no state: dead-lettered
        with kombu.Connection(f"amqp://guest:guest@{RABBIT}/{vhost}") as conn:
            ex = kombu.Exchange("nova", type="topic", durable=True)
            producer = conn.Producer()
            for body in (good, bad):
                producer.publish(with_context(body), exchange=ex, declare=[ex],
                                 routing_key="versioned_notifications.info",
                                 content_type="application/json", content_encoding="utf-8")  # fmt: skip

        def scanned() -> list[dict[str, Any]]:
            items = bus_store.client.scan(TableName=bus_store.table)["Items"]
            pks = {i["pk"]["S"] for i in items}
            return items if {"server#srv-good", "deadletter"} <= pks else []

        items = wait_for(scanned, timeout=60)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=10) as r:
            exposed = r.read().decode()
        assert "reclaim_bus_dead_lettered_total" in exposed
        code = sigterm_exit_code(proc, within=15)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert code == 0
    assert [t.resource_id for t in bus_store.pending()] == ["srv-good"], "the login worked"
    stored = json.dumps(items)
    assert "_context_" not in stored and "auth_token" not in stored
    assert leaks(stored) == []
    assert leaks("".join(logged) + out + err) == []
    assert leaks(exposed) == []


@pytest.mark.parametrize("password", [PASSWORD, "xq,zv", "xq/zv", "xq@zv", "xq%zv"])
def test_listen_with_a_raw_reserved_character_is_one_line_without_the_password(
    password: str,
) -> None:
    url = f"rabbit://someone:{password}@{RABBIT}/x"
    for args, env in (
        (["--transport-url", url], {}),
        ([], {"RECLAIM_BUS__TRANSPORT_URL": url}),
    ):
        out = subprocess.run(
            [RECLAIM, "listen", *args, "--store", "memory://t", "--metrics-port", "0"],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1", **env},
        )  # fmt: skip
        assert out.returncode == 2, out.stderr
        [line] = out.stderr.splitlines()
        assert line.startswith("reclaim: error: settings: ")
        assert "percent-encode it" in line and "Traceback" not in out.stderr
        assert password not in out.stdout + out.stderr
        assert leaks(line) == [] and "xq" not in line and "zv" not in line
