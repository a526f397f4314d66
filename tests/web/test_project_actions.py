"""The project page's actions are the resource page's: "keep it" and "ask for an exemption"
sent from a row, by a member signed in with Keystone."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from reclaim.store import DynamoTimerStore
from reclaim.sweeper.notices import RecordingNotices
from reclaim.web.app import create_app
from reclaim.web.requests import ExemptionRequests
from tests.web.conftest import BASE, Clock, stop_server, web_settings
from tests.web.keystone_world import World, csrf_of, sign_in, world

__all__ = ["world"]

VM = "a1111111-1111-4111-8111-111111111111"


@pytest.fixture
def member(
    world: World, moto_store: DynamoTimerStore, clock: Clock, alerts: RecordingNotices
) -> Iterator[TestClient]:
    stop_server(moto_store, VM, world.projects["alpha"], name="genome-assembly")
    app = create_app(
        web_settings(keystone_url=world.auth_url), moto_store, clock=clock, notices=alerts
    )
    with TestClient(app, base_url=BASE, follow_redirects=True) as c:
        sign_in(c, "ann")
        yield c


def _row_dates(page: str) -> list[str]:
    return re.findall(r'<td data-label="When"><time datetime="([^"]+)"', page)


def test_keep_it_from_the_project_page(
    member: TestClient, world: World, moto_store: DynamoTimerStore
) -> None:
    page = f"/projects/{world.projects['alpha']}"
    before = member.get(page)
    assert "Keep it 2 weeks longer" in before.text
    (due,) = _row_dates(before.text)
    r = member.post(
        f"/resource/server/{VM}/keep",
        data={"csrf_token": csrf_of(before.text), "rule": "shelve", "reason": "thesis runs"},
    )
    assert r.status_code == 200
    assert "Postponed by 2 weeks." in r.text
    after = member.get(page)
    (moved,) = _row_dates(after.text)
    assert moved > due
    assert "Keep it 2 weeks longer" not in after.text  # once per condition
    (timer,) = moto_store.timers_for("server", VM)
    granted = [e for e in timer.history if e.what == "extend"]
    assert granted[-1].detail["by"].startswith("ann (")
    assert granted[-1].detail["reason"] == "thesis runs"


def test_ask_for_an_exemption_from_the_project_page(
    member: TestClient, world: World, moto_store: DynamoTimerStore, alerts: RecordingNotices
) -> None:
    page = f"/projects/{world.projects['alpha']}"
    before = member.get(page)
    r = member.post(
        f"/resource/server/{VM}/exempt",
        data={"csrf_token": csrf_of(before.text), "reason": "long-running simulation"},
    )
    assert "sent to the operators" in r.text
    (asked,) = ExemptionRequests(moto_store).all()
    assert asked.requested_by.startswith("ann (") and asked.resource_id == VM
    assert [m.kind for m in alerts.messages][-1] == "exemption_requested"
    assert "Exemption asked, not answered yet." in member.get(page).text


def test_a_form_without_its_csrf_token_changes_nothing(
    member: TestClient, moto_store: DynamoTimerStore
) -> None:
    r = member.post(f"/resource/server/{VM}/keep", data={"rule": "shelve", "reason": "x"})
    assert r.status_code == 403
    (timer,) = moto_store.timers_for("server", VM)
    assert not timer.extension
