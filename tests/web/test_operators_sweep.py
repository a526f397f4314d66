"""End to end on the simulated cloud (Keystone, Nova over HTTP): a member asks for an
exemption from their project page, an operator approves it on theirs, and the next sweep
leaves the server alone; a second server, not exempted, is shelved by the same sweep. A
shelve Nova refuses past its retries is on the operators' page, with the reconcile that
starts it again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from reclaim.reconcile.engine import reconcile
from reclaim.settings import Settings
from reclaim.store import DynamoTimerStore
from reclaim.sweeper import OpenStackCloud, RecordingNotices
from reclaim.web.app import create_app
from reclaim.web.requests import ExemptionRequests
from reclaim_sim import SimServer
from tests.sweeper.conftest import NOW, World, make_sweeper
from tests.web.conftest import BASE, web_settings
from tests.web.keystone_world import csrf_of, make_world, sign_in


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    cloud, _projects, _users = make_world()
    with SimServer(cloud) as server:
        yield server
    cloud.close()


def alpha_world(sim: SimServer, store: DynamoTimerStore) -> World:
    """The sweeper tests' world on project alpha, ann its user, with an image of its own."""
    cloud = sim.cloud
    alpha = cloud.identity.project("alpha").id
    image = cloud.image.create_image(owner=alpha, name="img", visibility="private", status="active")
    return World(cloud, store, alpha, cloud.identity.user("ann").id, image.id)


def test_an_approved_exemption_makes_the_next_sweep_skip_the_server(
    sim: SimServer, moto_store: DynamoTimerStore
) -> None:
    world = alpha_world(sim, moto_store)
    cloud, alpha = world.cloud, world.project_id
    keep, other = world.server(), world.server()
    for sid in (keep, other):
        world.timer(sid)  # stopped 200 days ago, warned on time: due now
    port = OpenStackCloud(sim.connect())
    app = create_app(
        web_settings(keystone_url=sim.auth_url), moto_store,
        notices=RecordingNotices(), cloud=port, clock=lambda: NOW,
    )  # fmt: skip

    with TestClient(app, base_url=BASE, follow_redirects=True) as member:
        sign_in(member, "ann")
        page = member.get(f"/projects/{alpha}")
        assert page.text.count("Ask for an exemption") == 2
        r = member.post(
            f"/resource/server/{keep}/exempt",
            data={"csrf_token": csrf_of(page.text), "reason": "instrument control, always on"},
        )
        assert "sent to the operators" in r.text

    with TestClient(app, base_url=BASE, follow_redirects=True) as operator:
        sign_in(operator, "olga")
        page = operator.get("/operators")
        assert "instrument control, always on" in page.text
        (asked,) = ExemptionRequests(moto_store).all("pending")
        r = operator.post(
            f"/operators/requests/{asked.request_id}",
            data={
                "csrf_token": csrf_of(page.text),
                "decision": "approve",
                "reason": "it drives the telescope",
            },
        )
        assert "is approved" in r.text

    metadata = cloud.compute.servers[keep].metadata
    assert metadata["reclaim:exempt"].startswith("approved 2026-03-01 by olga (")
    cloud.requests.clear()

    report = make_sweeper(world, OpenStackCloud(sim.connect())).sweep(NOW)

    outcomes = {o.resource_id: o for o in report.outcomes}
    assert outcomes[keep].result == "skipped" and "exempt" in outcomes[keep].reason
    assert outcomes[other].result == "done"
    assert world.shelves(keep) == 0 and world.shelves(other) == 1
    (timer,) = moto_store.timers_for("server", keep)
    audit = [(e.what, e.outcome, e.detail.get("by", "")[:4]) for e in timer.history]
    assert ("exemption", "requested", "ann ") in audit
    assert ("exemption", "approved", "olga") in audit


def test_an_action_that_failed_for_good_is_listed_until_a_reconcile_starts_it_again(
    sim: SimServer, moto_store: DynamoTimerStore
) -> None:
    world = alpha_world(sim, moto_store)
    cloud, alpha = world.cloud, world.project_id
    sid = world.server()
    world.timer(sid)  # stopped 200 days ago, warned on time: due now
    nova_refuses = cloud.faults.add(service="compute", method="POST", path_regex="/action")
    try:
        report = make_sweeper(world, OpenStackCloud(sim.connect()), max_attempts=1).sweep(NOW)
    finally:
        cloud.faults.remove(nova_refuses)
    assert [o.result for o in report.outcomes] == ["failed"]
    app = create_app(web_settings(keystone_url=sim.auth_url), moto_store, clock=lambda: NOW)

    with TestClient(app, base_url=BASE, follow_redirects=True) as operator:
        sign_in(operator, "olga")
        section = operator.get("/operators").text.split('id="failed"')[1].split("</section>")[0]
        assert "1 action failed past its retries" in section
        assert f"reclaim audit server {sid}" in section
        assert f"shelve server {sid}: 503" in section  # the sweeper's reason
        assert f"reclaim reconcile --project {alpha}" in section

        # the command the page gives: the server is still stopped, so a new run starts
        reconcile(sim.connect(), moto_store, Settings(), NOW + timedelta(hours=1), project=alpha)
        (timer,) = moto_store.timers_for("server", sid)
        assert timer.state == "pending" and timer.attempts == 0
        assert "No action has failed for good." in operator.get("/operators").text
