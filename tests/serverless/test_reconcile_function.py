"""The reconcile function: lambda_handler on a daily tick, moto table and secret, a simulated cloud."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from reclaim.serverless import local
from reclaim.store import open_store
from reclaim.store.port import ReconcileMark
from reclaim.store.reconciles import ReconcileRecord
from reclaim_sim import Cloud, SimClock, SimServer
from reclaim_sim.server import ADMIN_CLOUD, empty_cloud_environment
from tests.serverless.conftest import fresh_table, lambda_event

#: The schedule sample's time; the simulated cloud's clock stands there too.
NOW = datetime(2026, 3, 15, 10, 0, tzinfo=UTC)
STOPPED_AT = NOW - timedelta(days=3)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    cloud = Cloud(clock=SimClock(NOW))
    with SimServer(cloud) as server:
        yield server
    cloud.close()


def _clouds_secret(sim: SimServer, tmp_path: Path) -> dict[str, str]:
    text = sim.write_clouds_yaml(tmp_path / "clouds.yaml").read_text()
    arn = boto3.client("secretsmanager").create_secret(
        Name=f"clouds-{uuid.uuid4().hex[:8]}", SecretString=text
    )["ARN"]
    return {"CLOUDS_YAML_SECRET": arn, "OS_CLOUD": ADMIN_CLOUD}


def test_a_daily_tick_creates_the_timer_a_lost_event_left_missing_once(
    sim: SimServer, tmp_path: Path
) -> None:
    cloud = sim.cloud
    project = cloud.identity.create_project(f"proj-{uuid.uuid4().hex[:6]}")
    user = cloud.identity.create_user(f"user-{uuid.uuid4().hex[:6]}", email="u@example.org")
    image = cloud.image.create_image(owner=project.id, name="img", visibility="private",
                                     status="active")  # fmt: skip
    server = cloud.compute.create_server(
        project_id=project.id, user_id=user.id, name="quiet-vm", image_id=image.id,
        state="stopped", updated_at=STOPPED_AT,
    )  # fmt: skip
    url = f"memory://{fresh_table()}"
    store = open_store(url)
    # Not a new installation: a reconcile of the whole cloud has completed on this table.
    ReconcileRecord.beside(store).record(ReconcileMark(at=NOW - timedelta(days=30)))
    env = _clouds_secret(sim, tmp_path)

    first = local.invoke("ReconcileFunction", lambda_event("schedule"), url, environment=env)
    second = local.invoke("ReconcileFunction", lambda_event("schedule"), url, environment=env)

    assert first["started"] == "2026-03-15T10:00:00Z" and not first["dry_run"]
    rows = [r for r in first["rows"] if r["resource_id"] == server.id]
    assert [(r["rule"], r["change"]) for r in rows] == [("shelve", "create")]
    # 14 days after the server's `updated` time (to the second Nova gives it)
    assert rows[0]["due_after"].startswith("2026-03-26T10:00:00")
    (timer,) = store.timers_for("server", server.id)
    assert (timer.rule, timer.state) == ("shelve", "pending")
    assert timer.due_at is not None
    assert abs(timer.due_at - (STOPPED_AT + timedelta(days=14))) < timedelta(seconds=1)
    assert second["drift"] == 0 and second["written"] == 0, "nothing left to repair"


def test_local_invoke_without_a_cloud_reconciles_an_empty_simulated_one() -> None:
    response = local.invoke(
        "ReconcileFunction",
        lambda_event("schedule"),
        f"memory://{fresh_table()}",
        local_cloud=empty_cloud_environment,
    )
    assert response["servers"] == 0 and response["drift"] == 0
