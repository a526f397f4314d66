"""The operators' page: only for the operator role; the breaker reset with a reason;
exemption requests decided with a reason; held, soon due and postponed actions; dead
letters. Every change names who made it and why."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from botocore.exceptions import ClientError
from starlette.applications import Starlette
from starlette.testclient import TestClient

from reclaim.deadletters import DeadLetterStore, dead_letter
from reclaim.policy.servers import SHELVE
from reclaim.store import DynamoTimerStore
from reclaim.sweeper.breaker import Breaker
from reclaim.sweeper.notices import RecordingNotices
from reclaim.web import operators
from reclaim.web.app import create_app
from reclaim.web.requests import ExemptionRequests, ask_exemption
from tests.web.conftest import BASE, T0, Clock, fail_for_good, stop_server, web_settings
from tests.web.keystone_world import World, csrf_of, sign_in, world

__all__ = ["world"]

SOON_VM = "b1111111-1111-4111-8111-111111111111"
LATER_VM = "b2222222-2222-4222-8222-222222222222"


@pytest.fixture
def site(
    world: World, moto_store: DynamoTimerStore, clock: Clock, alerts: RecordingNotices
) -> Starlette:
    # clock: T0 + 8 d. Shelved at T0 + 14 d: due within 7 days; the other at T0 + 30 d.
    stop_server(moto_store, SOON_VM, world.projects["alpha"], name="due-soon-vm")
    stop_server(moto_store, LATER_VM, world.projects["gamma"], at=T0 + timedelta(days=16),
                name="later-vm")  # fmt: skip
    return create_app(
        web_settings(keystone_url=world.auth_url), moto_store, clock=clock, notices=alerts
    )


@pytest.fixture
def olga(site: Starlette) -> Iterator[TestClient]:
    with TestClient(site, base_url=BASE, follow_redirects=True) as c:
        sign_in(c, "olga")
        yield c


def test_only_operators_open_the_page(site: Starlette) -> None:
    with TestClient(site, base_url=BASE, follow_redirects=True) as c:
        assert c.get("/operators").url.path == "/signin"
        sign_in(c, "ann")
        r = c.get("/operators")
        assert r.status_code == 403
        assert "due-soon-vm" not in r.text
        token = csrf_of(c.get("/projects").text)
        refused = c.post("/operators/breaker/reset", data={"csrf_token": token, "reason": "x"})
        assert refused.status_code == 403


def test_an_operator_sees_every_project_and_what_is_due_soon(olga: TestClient) -> None:
    landing = olga.get("/projects")
    assert '<a href="/operators">Operators</a>' in landing.text
    page = olga.get("/operators")
    assert page.status_code == 200
    soon = page.text.split('id="soon"')[1].split("</section>")[0]
    assert "due-soon-vm" in soon and "later-vm" not in soon
    assert "Nothing is held and nothing is failing." in page.text


def test_the_breaker_is_reset_with_a_reason_and_who(
    olga: TestClient, moto_store: DynamoTimerStore
) -> None:
    breaker = Breaker(moto_store)
    breaker.open(T0, "cap of 50 destructive actions reached")
    page = olga.get("/operators")
    assert "Open since" in page.text and "cap of 50 destructive actions reached" in page.text
    token = csrf_of(page.text)
    # without a reason, or without the form's token, it stays open
    r = olga.post("/operators/breaker/reset", data={"csrf_token": token, "reason": "  "})
    assert "Say why the breaker may be closed" in r.text
    assert olga.post("/operators/breaker/reset", data={"reason": "ok"}).status_code == 403
    assert breaker.status().open
    r = olga.post(
        "/operators/breaker/reset",
        data={"csrf_token": token, "reason": "the 50 deletions were the expired project's"},
    )
    assert "The breaker is closed" in r.text
    state = breaker.status()
    assert not state.open
    assert state.reset_by.startswith("olga (")
    assert state.reset_reason == "the 50 deletions were the expired project's"
    assert "the 50 deletions were the expired project&#39;s" in r.text


def test_a_request_is_refused_with_a_reason_for_the_person(
    olga: TestClient, moto_store: DynamoTimerStore, alerts: RecordingNotices
) -> None:
    (timer,) = moto_store.timers_for("server", SOON_VM)
    ok, _ = ask_exemption(moto_store, alerts, timer, "ann (u) signed in with Keystone",
                          "needed <b>for ever</b>", T0 + timedelta(days=8))  # fmt: skip
    assert ok
    page = olga.get("/operators")
    assert "needed &lt;b&gt;for ever&lt;/b&gt;" in page.text  # escaped, never markup
    (asked,) = ExemptionRequests(moto_store).all()
    # no cloud to write through: approving is not offered, and refused if sent anyway
    assert 'value="approve"' not in page.text
    r = olga.post(
        f"/operators/requests/{asked.request_id}",
        data={"csrf_token": csrf_of(page.text), "decision": "approve", "reason": "fine"},
    )
    assert "Not done:" in r.text
    assert ExemptionRequests(moto_store).get(asked.request_id).state == "pending"  # type: ignore[union-attr]
    r = olga.post(
        f"/operators/requests/{asked.request_id}",
        data={"csrf_token": csrf_of(r.text), "decision": "refuse", "reason": "use a snapshot"},
    )
    assert "is refused" in r.text
    decided = ExemptionRequests(moto_store).get(asked.request_id)
    assert decided is not None and decided.state == "refused"
    assert decided.decided_by.startswith("olga (") and decided.why == "use a snapshot"
    (timer,) = moto_store.timers_for("server", SOON_VM)
    entry = timer.history[-1]
    assert (entry.what, entry.outcome) == ("exemption", "refused")
    assert entry.detail["by"].startswith("olga (") and entry.detail["why"] == "use a snapshot"
    assert "No request is waiting." in r.text and "use a snapshot" in r.text


def test_dead_letters_are_listed_latest_first_with_the_command_that_replays_each(
    olga: TestClient, moto_store: DynamoTimerStore
) -> None:
    old = dead_letter(b"{not json", stage="decode", reason="body is not JSON",
                      routing_key="notifications.info", now=T0)  # fmt: skip
    new = dead_letter(
        {"event_type": "compute.instance.power_off.end", "payload": {"nova_object.name": "x"}},
        stage="parse", reason="payload: field required", now=T0 + timedelta(hours=3),
    )  # fmt: skip
    DeadLetterStore.beside(moto_store).record([old, new])
    section = olga.get("/operators").text.split('id="letters"')[1]
    assert "2 messages reclaim could not use" in section
    assert section.index(new.id) < section.index(old.id)
    assert "<code>compute.instance.power_off.end</code>" in section
    assert "parse: payload: field required" in section and "decode: body is not JSON" in section
    assert '<time datetime="2026-03-01T13:00:00+00:00">2026-03-01T13:00:00Z</time>' in section
    assert f"reclaim deadletters replay {new.id}" in section
    assert "reclaim deadletters replay --all" in section
    assert "<code>{not json</code>" in section and "9 bytes" in section


def failed_section(page: str) -> str:
    return page.split('id="failed"')[1].split("</section>")[0]


def test_actions_failed_for_good_are_listed_with_what_to_run(
    olga: TestClient, world: World, moto_store: DynamoTimerStore
) -> None:
    assert "No action has failed for good." in olga.get("/operators").text
    fail_for_good(moto_store, SOON_VM, T0 + timedelta(days=7),
                  "shelve failed 5 times: Nova answered 500 on POST /servers/action")  # fmt: skip
    fail_for_good(moto_store, LATER_VM, T0 + timedelta(days=20), "shelve failed 5 times: 409")
    page = olga.get("/operators").text
    section = failed_section(page)
    assert "2 actions failed past their retries" in section
    # latest first, each with its resource, rule, reason, date and the commands to run
    assert section.index("later-vm") < section.index("due-soon-vm")
    assert "Nova answered 500 on POST /servers/action" in section
    assert "<code>shelve</code> (shelve)" in section
    assert '<time datetime="2026-03-08T10:00:00+00:00">2026-03-08</time>' in section
    assert f"reclaim audit server {SOON_VM}" in section
    assert f"reclaim reconcile --project {world.projects['alpha']}" in section
    assert f'href="/resource/server/{SOON_VM}"' in section
    # nor are they counted as failing or due any more (they left the due index)
    assert "due-soon-vm" not in page.split('id="soon"')[1].split("</section>")[0]


def test_a_failed_action_whose_resource_changed_since_is_not_listed(
    olga: TestClient, moto_store: DynamoTimerStore
) -> None:
    failed_at = T0 + timedelta(days=7)
    fail_for_good(moto_store, SOON_VM, failed_at, "shelve failed 5 times: 500")
    assert "due-soon-vm" in failed_section(olga.get("/operators").text)
    # the person started the server a day after: the run is closed later, nothing to do
    moto_store.apply([SHELVE.cancel(SOON_VM, event_time=failed_at + timedelta(days=1))])
    (timer,) = moto_store.timers_for("server", SOON_VM)
    assert timer.state == "failed"  # the store keeps the closed run as it was
    assert "No action has failed for good." in olga.get("/operators").text


def test_a_store_that_refuses_the_scan_leaves_the_rest_of_the_page(
    olga: TestClient, moto_store: DynamoTimerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(**kwargs: object) -> None:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "Scan")

    monkeypatch.setattr(moto_store.client, "scan", refused)
    page = olga.get("/operators")
    assert page.status_code == 200
    assert "The store did not give the list of failed actions now." in page.text
    assert "due-soon-vm" in page.text.split('id="soon"')[1]


def test_a_table_too_large_to_scan_in_time_gives_what_was_read_and_says_so(
    olga: TestClient, moto_store: DynamoTimerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_for_good(moto_store, SOON_VM, T0 + timedelta(days=7), "shelve failed 5 times: 500")
    assert "may miss some" not in olga.get("/operators").text
    monkeypatch.setattr(operators, "SCAN_PAGE", 1)  # one item a page...
    monkeypatch.setattr(operators, "SCAN_BUDGET", 0.0)  # ...and no time for a second one
    page = olga.get("/operators")
    assert page.status_code == 200
    assert "The table is too large to read whole in 0 seconds" in failed_section(page.text)
