"""Starting against a broker that is away, refuses reclaim, or has no exchanges yet."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import kombu
import pytest

from reclaim.bus.listener import Listener
from reclaim.bus.settings import BusSettings
from reclaim.settings import PolicySettings
from reclaim.store import DynamoTimerStore
from tests.bus.conftest import RABBIT
from tests.support.dynalite import free_port
from tests.support.processes import lines_until, sigterm_exit_code

RECLAIM = str(Path(sys.executable).parent / "reclaim")
ENV = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
PROJECT = "b2e1d3c5f7a94d1f8e6a0b1c2d3e4f5a"  # a Keystone project id


def test_listen_stops_at_once_on_sigterm_while_the_broker_is_unreachable() -> None:
    url = f"rabbit://guest:guest@127.0.0.1:{free_port()}/x"
    proc = subprocess.Popen(
        [RECLAIM, "listen", "--transport-url", url, "--store", "memory://t", "--metrics-port", "0"],
        stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip
    try:
        lines = lines_until(proc, '"broker_unreachable"')
        assert "guest:guest" not in "".join(lines), "the password is not logged"
        code = sigterm_exit_code(proc)
    finally:
        proc.kill()
        proc.wait()
    assert code == 0


@pytest.mark.rabbitmq
@pytest.mark.parametrize(
    ("user", "vhost_name", "refused"),
    [
        ("guest:guest", "no-such-vhost", "refused the virtual host"),
        ("guest:not-the-password", None, "refused the login"),
    ],
)
def test_listen_refused_by_the_broker_says_so_in_one_line_and_exits_1(
    vhost: str, user: str, vhost_name: str | None, refused: str
) -> None:
    url = f"rabbit://{user}@{RABBIT}/{vhost_name or vhost}"
    out = subprocess.run(
        [RECLAIM, "listen", "--transport-url", url, "--store", "memory://t", "--metrics-port", "0"],
        capture_output=True, text=True, env=ENV, timeout=60,
    )  # fmt: skip
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    (line,) = [x for x in out.stderr.splitlines() if not x.startswith("{")]  # not a log line
    assert line.startswith("reclaim: error: listen: the broker at rabbit://guest:***@")
    assert f"/{vhost_name or vhost} {refused}" in line
    assert "not-the-password" not in line


@pytest.mark.rabbitmq
def test_by_default_listen_creates_missing_exchanges_non_durable_as_oslo_does_and_warns(
    fresh_vhost: str, bus_store: DynamoTimerStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A cloud on oslo's defaults (amqp_durable_queues = false) that has sent nothing since
    the broker started: reclaim creates its exchanges the way the cloud will declare them."""
    settings = BusSettings(transport_url=f"rabbit://guest:guest@{RABBIT}/{fresh_vhost}",
                           metrics_port=0)  # fmt: skip
    assert settings.durable_queues is False
    with caplog.at_level(logging.WARNING, logger="reclaim.bus"):
        listener = Listener(settings, bus_store, PolicySettings()).start()
    try:
        created = [
            json.loads(r.getMessage())
            for r in caplog.records
            if "exchange_created" in r.getMessage()
        ]
        assert {c["exchange"] for c in created} == {
            "nova",
            "glance",
            "keystone",
            "neutron",
            "openstack",
        }
        assert all(not c["durable"] and "bus.durable_queues" in c["setting"] for c in created)
        with kombu.Connection(f"amqp://guest:guest@{RABBIT}/{fresh_vhost}") as conn:
            # what nova on oslo's defaults declares next: accepted (406 if it were durable)
            conn.channel().exchange_declare("nova", "topic", durable=False, auto_delete=False)
    finally:
        listener.stop()


@pytest.mark.rabbitmq
def test_publish_and_allocation_declare_as_bus_durable_queues_says(
    fresh_vhost: str, tmp_path: Path
) -> None:
    url = f"rabbit://guest:guest@{RABBIT}/{fresh_vhost}"
    with kombu.Connection(f"amqp://guest:guest@{RABBIT}/{fresh_vhost}") as conn:
        conn.channel().exchange_declare("openstack", "topic", durable=False, auto_delete=False)
    sample = tmp_path / "ended.json"
    sample.write_text(
        json.dumps({"event_type": "allocation.ended", "payload": {"project_id": PROJECT}})
    )

    def reclaim(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([RECLAIM, *args, "--transport-url", url], capture_output=True,
                              text=True, env={**ENV, **env}, timeout=60)  # fmt: skip

    wrapped = tmp_path / "ended.v2.json"  # the messagingv2 envelope form of the same event
    wrapped.write_text(json.dumps({"oslo.version": "2.0", "oslo.message": sample.read_text()}))
    for taken in (
        reclaim("allocation", "end", PROJECT),
        reclaim("allocation", "renew", PROJECT, "--no-durable"),
        reclaim("publish", str(sample), "--no-durable"),
        reclaim("publish", str(wrapped)),
    ):
        assert taken.returncode == 0, taken.stderr
    assert "ended.v2.json: allocation.ended -> openstack notifications.info" in taken.stderr
    for refused in (
        reclaim("allocation", "end", PROJECT, "--durable"),
        reclaim("publish", str(sample), RECLAIM_BUS__DURABLE_QUEUES="true"),
    ):
        assert refused.returncode == 1, refused.stderr
        line = refused.stderr.splitlines()[-1]
        assert "PRECONDITION_FAILED" in line and "bus.durable_queues" in line, line
