"""The sweeper function: lambda_handler on a schedule tick, moto table and secrets, a simulated cloud."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from reclaim.policy.servers import SHELVE
from reclaim.serverless import local, runtime
from reclaim.serverless.notices import kombu_url
from reclaim.serverless.sweeper import notice_url
from reclaim.settings import PolicySettings, Settings
from reclaim.store import DynamoTimerStore, open_store
from reclaim.store.quarantine import Quarantine
from reclaim.wire import read_envelope
from reclaim_sim import Cloud, SimClock, SimServer
from reclaim_sim.server import ADMIN_CLOUD, empty_cloud_environment
from tests.serverless.conftest import fresh_table, lambda_event
from tests.support.poison import poison

BROKER = "rabbit://guest:guest@127.0.0.1:5672/"
#: The schedule sample's time; the simulated cloud's clock stands there too.
NOW = datetime(2026, 3, 15, 10, 0, tzinfo=UTC)
STOPPED_AT = NOW - timedelta(days=20)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    cloud = Cloud(clock=SimClock(NOW))
    with SimServer(cloud) as server:
        yield server
    cloud.close()


@pytest.fixture
def notice_names() -> Iterator[dict[str, str]]:
    """A fresh exchange and topic for the sweep's notices, removed afterwards."""
    import kombu

    names = {"NOTICE_EXCHANGE": f"reclaim-test-{uuid.uuid4().hex[:8]}",
             "NOTICE_TOPIC": f"notices_{uuid.uuid4().hex[:8]}"}  # fmt: skip
    yield names
    with kombu.Connection(kombu_url(BROKER)) as conn:
        channel = conn.channel()
        for priority in ("info", "warn"):
            channel.queue_delete(f"{names['NOTICE_TOPIC']}.{priority}")
        channel.exchange_delete(names["NOTICE_EXCHANGE"])


def _secrets(sim: SimServer, tmp_path: Path) -> dict[str, str]:
    """clouds.yaml and the broker URL as Secrets Manager secrets (moto); their ARNs."""
    clouds = sim.write_clouds_yaml(tmp_path / "clouds.yaml").read_text()
    client = boto3.client("secretsmanager")
    tag = uuid.uuid4().hex[:8]
    return {
        "CLOUDS_YAML_SECRET": client.create_secret(Name=f"clouds-{tag}", SecretString=clouds)[
            "ARN"
        ],
        "NOTICE_BROKER_SECRET": client.create_secret(
            Name=f"broker-{tag}", SecretString=json.dumps({"url": BROKER})
        )["ARN"],
        "OS_CLOUD": ADMIN_CLOUD,
    }


def _stopped_server_with_due_timer(
    sim: SimServer, store: DynamoTimerStore, *, notices: bool = False
) -> str:
    cloud = sim.cloud
    project = cloud.identity.create_project(f"proj-{uuid.uuid4().hex[:6]}")
    user = cloud.identity.create_user(f"user-{uuid.uuid4().hex[:6]}", email="u@example.org")
    cloud.identity.grant(user.id, project.id, "member")
    image = cloud.image.create_image(owner=project.id, name="img", visibility="private",
                                     status="active")  # fmt: skip
    server = cloud.compute.create_server(project_id=project.id, user_id=user.id, name="vm",
                                         image_id=image.id, state="stopped",
                                         updated_at=STOPPED_AT)  # fmt: skip
    policy = PolicySettings()
    store.apply(
        SHELVE.schedule(
            server.id, since=STOPPED_AT, delay=policy.shelve_after, event_time=STOPPED_AT,
            notices=tuple((SHELVE.notice or "", d) for d in policy.shelve_notices if notices),
            project_id=project.id, user_id=user.id, detail={"state": "stopped"},
        )
    )  # fmt: skip
    return str(server.id)


def _shelves(sim: SimServer, server_id: str) -> int:
    return sum(1 for r in sim.cloud.requests.filter(method="POST", path_regex=f"{server_id}/action")
               if r.status == 202)  # fmt: skip


def _drain(queue: str) -> list[Any]:
    import kombu

    with kombu.Connection(kombu_url(BROKER)) as conn:
        channel = conn.channel()
        out = []
        while (message := channel.basic_get(queue, no_ack=True)) is not None:
            out.append(read_envelope(message.body))
        return out


def test_a_tick_shelves_the_due_server_once(
    sim: SimServer, tmp_path: Path, notice_names: dict[str, str]
) -> None:
    url = f"memory://{fresh_table()}"
    store = open_store(url)  # the table from template.yaml; moto serves Secrets Manager too
    server_id = _stopped_server_with_due_timer(sim, store)
    env = {**_secrets(sim, tmp_path), **notice_names}

    first = local.invoke("SweeperFunction", lambda_event("schedule"), url, environment=env)
    second = local.invoke("SweeperFunction", lambda_event("schedule"), url, environment=env)

    assert _shelves(sim, server_id) == 1, (first, second)
    assert first["counts"] == {"done": 1} and first["stopped"] == ""
    assert [o["resource_id"] for o in first["outcomes"]] == [server_id]
    assert second["counts"] == {}, "a done timer is not due again"
    (timer,) = store.timers_for("server", server_id)
    assert timer.state == "done"


@pytest.mark.rabbitmq
def test_a_tick_warns_the_owner_on_the_broker_before_acting(
    sim: SimServer, tmp_path: Path, notice_names: dict[str, str]
) -> None:
    url = f"memory://{fresh_table()}"
    store = open_store(url)
    server_id = _stopped_server_with_due_timer(sim, store, notices=True)
    env = {**_secrets(sim, tmp_path), **notice_names}

    response = local.invoke("SweeperFunction", lambda_event("schedule"), url, environment=env)

    # a late schedule sends its first notice only, restating the date a whole lead ahead
    assert response["counts"] == {"notified": 1} and response["notices_sent"] == 1
    assert _shelves(sim, server_id) == 0, "the owner is warned before anything happens"
    notices = _drain(f"{notice_names['NOTICE_TOPIC']}.info")
    assert len(notices) == 1
    assert {n.payload["resource_id"] for n in notices} == {server_id}
    assert all(n.event_type == f"reclaim.notice.{n.payload['kind']}" for n in notices)
    assert all(n.publisher_id == "reclaim.sweeper" and n.priority == "INFO" for n in notices)


def test_a_tick_with_little_time_left_claims_nothing(sim: SimServer, tmp_path: Path) -> None:
    url = f"memory://{fresh_table()}"
    store = open_store(url)
    server_id = _stopped_server_with_due_timer(sim, store)
    env = _secrets(sim, tmp_path)

    # 5 s left, under the 15 s the function keeps in reserve: it must not start a timer.
    response = local.invoke(
        "SweeperFunction", lambda_event("schedule"), url, environment=env, timeout=5
    )
    assert response["stopped"] == "deadline"
    assert response["outcomes"] == []
    assert _shelves(sim, server_id) == 0
    (timer,) = store.timers_for("server", server_id)
    assert timer.state == "pending" and not timer.lease_owner


def test_local_invoke_without_a_cloud_runs_against_a_simulated_one() -> None:
    response = local.invoke(
        "SweeperFunction",
        lambda_event("schedule"),
        f"memory://{fresh_table()}",
        local_cloud=empty_cloud_environment,
    )
    assert response["started"] == "2026-03-15T10:00:00+00:00"
    assert response["counts"] == {} and response["stopped"] == ""
    assert response["notices_to"] == "kombu+memory:////", "a local run publishes nowhere"


#: A broker password with every reserved character, and as a transport URL holds it.
PASSWORD = "pa,ss/wo@rd:50%"
ENCODED = "pa%2Css%2Fwo%40rd%3A50%25"


@pytest.mark.parametrize("password", ["secret", ENCODED])
def test_local_invoke_publishes_notices_where_the_environment_says(
    monkeypatch: pytest.MonkeyPatch, password: str
) -> None:
    monkeypatch.setenv("RECLAIM_BUS__TRANSPORT_URL", f"rabbit://u:{password}@mq.example.org:5671/v")
    response = local.invoke(
        "SweeperFunction",
        lambda_event("schedule"),
        f"memory://{fresh_table()}",
        local_cloud=empty_cloud_environment,
    )
    assert response["notices_to"] == "rabbit://u:***@mq.example.org:5671/v"
    text = json.dumps(response)
    assert password not in text and "secret" not in text and "50%" not in text


def test_a_broker_secret_with_a_raw_reserved_character_is_refused_without_showing_it() -> None:
    class Secrets:
        def get_secret_value(self, SecretId: str) -> dict[str, str]:
            return {"SecretString": json.dumps({"url": f"rabbit://u:{PASSWORD}@mq:5671/"})}

    settings = Settings()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NOTICE_BROKER_SECRET", "broker")
        with pytest.raises(ValueError, match="percent-encode") as caught:
            notice_url(settings, Secrets())
    assert "rd:50" not in str(caught.value) and "ss/wo" not in str(caught.value)


def test_the_function_refuses_bad_settings_in_one_line_without_their_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RECLAIM_BUS__TRANSPORT_URL", f"rabbit://u:{PASSWORD}@mq:5671/")
    monkeypatch.setenv("RECLAIM_MAILER__PASWORD", "hunter2")
    runtime.reset()
    try:
        with pytest.raises(runtime.ConfigurationError) as caught:
            runtime.runtime()
    finally:
        runtime.reset()
    message = str(caught.value)
    assert "bus.transport_url: a user or password holds a reserved character" in message
    assert "mailer.pasword" in message and "\n" not in message
    assert "hunter2" not in message and "rd:50" not in message and "ss/wo" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_local_tick_notices_go_to_the_in_process_bus(sim: SimServer, tmp_path: Path) -> None:
    url = f"memory://{fresh_table()}"
    store = open_store(url)
    _stopped_server_with_due_timer(sim, store, notices=True)
    clouds = sim.write_clouds_yaml(tmp_path / "clouds.yaml")
    env = {"OS_CLIENT_CONFIG_FILE": str(clouds), "OS_CLOUD": ADMIN_CLOUD}
    started = time.monotonic()
    response = local.invoke("SweeperFunction", lambda_event("schedule"), url, environment=env)
    assert time.monotonic() - started < 30
    assert response["notices_to"] == "kombu+memory:////"
    assert response["notices_sent"] == 1 and response["notices_failed"] == 0, response


def test_a_tick_sweeps_past_an_unreadable_item_and_reports_it_once(
    sim: SimServer, tmp_path: Path
) -> None:
    url = f"memory://{fresh_table()}"
    store = open_store(url)
    server_id = _stopped_server_with_due_timer(sim, store)
    key = poison(store, "bad-1")
    clouds = sim.write_clouds_yaml(tmp_path / "clouds.yaml")
    env = {"OS_CLIENT_CONFIG_FILE": str(clouds), "OS_CLOUD": ADMIN_CLOUD}

    response = local.invoke("SweeperFunction", lambda_event("schedule"), url, environment=env)

    assert response["counts"] == {"done": 1} and _shelves(sim, server_id) == 1, response
    assert response["unreadable"] == [key] and response["notices_failed"] == 0
    [found] = Quarantine.beside(store).scan()
    assert found.key == key and found.reported_at is not None, "the alert went out"
