"""End to end on the simulated cloud (Keystone, Nova over HTTP): a member asks for an
exemption from their project page, an operator approves it on theirs, and the next sweep
leaves the server alone; a second server, not exempted, is shelved by the same sweep."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

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


def test_an_approved_exemption_makes_the_next_sweep_skip_the_server(
    sim: SimServer, moto_store: DynamoTimerStore
) -> None:
    cloud = sim.cloud
    alpha = cloud.identity.project("alpha").id
    ann = cloud.identity.user("ann").id
    image = cloud.image.create_image(owner=alpha, name="img", visibility="private", status="active")
    world = World(cloud, moto_store, alpha, ann, image.id)
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
