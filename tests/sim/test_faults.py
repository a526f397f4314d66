"""Fault injection and the request log."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
import requests
from openstack import exceptions

from reclaim.cli.common import instant_or_exit
from reclaim_sim import Cloud, SimServer
from tests.sim.conftest import Tenant


@pytest.fixture(autouse=True)
def _no_faults_left(sim_cloud: Cloud) -> Any:
    yield
    sim_cloud.faults.clear()


def test_injected_5xx_for_a_number_of_requests(
    admin_conn: Any, tenant: Tenant, sim_cloud: Cloud
) -> None:
    sid = tenant.boot("flaky")
    admin_conn.compute.get_server(sid)  # discovery and auth done before the faults
    rule = sim_cloud.faults.add(
        service="compute", method="GET", path_regex=r"/servers/", status=503, count=2
    )
    for _ in range(2):
        with pytest.raises(exceptions.HttpException) as err:
            admin_conn.compute.get_server(sid)
        assert err.value.status_code == 503
    assert admin_conn.compute.get_server(sid).id == sid
    assert rule.hits == 2 and sim_cloud.faults.rules == []
    faulted = [r for r in sim_cloud.requests.all() if r.fault]
    assert [r.status for r in faulted[-2:]] == [503, 503]


def test_slow_replies(sim_server: SimServer, sim_cloud: Cloud) -> None:
    sim_cloud.faults.add(service="image", status=None, delay=0.3, count=1)
    started = time.monotonic()
    reply = requests.get(f"{sim_server.url}/image/", timeout=5)
    assert reply.status_code == 300
    assert time.monotonic() - started >= 0.3


def test_dropped_connection(sim_server: SimServer, sim_cloud: Cloud) -> None:
    sim_cloud.faults.add(service="network", drop=True, count=1)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{sim_server.url}/network/", timeout=5)
    assert requests.get(f"{sim_server.url}/network/", timeout=5).ok


def test_request_log_records_and_filters(tenant: Tenant, sim_cloud: Cloud) -> None:
    sid = tenant.boot("logged")
    sim_cloud.requests.clear()
    tenant.conn.compute.get_server(sid)
    assert sim_cloud.requests.mutating_requests() == []
    tenant.conn.compute.stop_server(sid)
    mutating = sim_cloud.requests.mutating_requests()
    assert [(r.method, r.service, r.status) for r in mutating] == [("POST", "compute", 202)]
    record = mutating[0]
    assert record.path == f"/compute/v2.1/servers/{sid}/action"
    assert record.project_id == tenant.project_id and record.user_id == tenant.user_id
    assert record.timestamp == sim_cloud.clock.now()
    gets = sim_cloud.requests.filter(service="compute", method="GET", path_regex=sid)
    assert gets and all(r.method == "GET" for r in gets)


def test_control_api(sim_server: SimServer, sim_cloud: Cloud) -> None:
    before = sim_cloud.clock.now()
    reply = requests.post(f"{sim_server.url}/_sim/clock", json={"advance": "14d"}, timeout=5)
    assert reply.ok
    assert (sim_cloud.clock.now() - before).days == 14
    unitless = requests.post(f"{sim_server.url}/_sim/clock", json={"advance": 14}, timeout=5)
    assert unitless.status_code == 400 and "needs a unit" in unitless.text
    text = requests.get(f"{sim_server.url}/_sim/clock?format=text", timeout=5)
    # what `reclaim sweep --now "$(curl ...)"` reads, as the banner shows
    assert abs(instant_or_exit(text.text.strip()) - sim_cloud.clock.now()) < timedelta(seconds=2)
    assert (sim_cloud.clock.now() - before).days == 14
    rule = requests.post(
        f"{sim_server.url}/_sim/faults",
        json={"service": "compute", "status": 500, "count": 1},
        timeout=5,
    )
    assert rule.status_code == 201
    assert requests.get(f"{sim_server.url}/compute/v2.1/servers", timeout=5).status_code == 500
    log = requests.get(f"{sim_server.url}/_sim/requests", timeout=5).json()["requests"]
    assert log[-1]["status"] == 500 and log[-1]["fault"] is True
    assert requests.get(f"{sim_server.url}/_sim/", timeout=5).json()["servers"] >= 0
