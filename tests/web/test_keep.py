""" "Keep it" and "ask for an exemption" from a mail's link, as a person uses them."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from reclaim.notices.kinds import DATE_CHANGED
from reclaim.policy.servers import SHELVE
from reclaim.store import DynamoTimerStore
from reclaim.sweeper.notices import RecordingNotices
from reclaim.timers import Timer
from reclaim.web.app import create_app
from reclaim.web.requests import (
    EXEMPTION_REQUESTED,
    EXTENSION_LIMIT,
    DecisionError,
    ExemptionRequests,
    Extensions,
    approve,
    refuse,
)
from tests.web.conftest import (
    OTHER_SERVER,
    PROJECT,
    READER,
    SERVER,
    T0,
    Clock,
    link_token,
    stop_server,
    warn,
    web_settings,
)

THIRD = "3c3c3c3c-0000-4000-8000-000000000003"


def token_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)


def shelve_timer(store: DynamoTimerStore, server: str = SERVER) -> Timer:
    return next(t for t in store.timers_for("server", server) if t.rule == SHELVE.id)


def open_page(client: TestClient, server: str = SERVER) -> str:
    r = client.get(f"/l/{link_token(server=server)}")
    assert r.status_code == 200
    return r.text


def keep_it(client: TestClient, page: str, server: str = SERVER, reason: str = "thesis run") -> str:
    r = client.post(
        f"/resource/server/{server}/keep",
        data={"csrf_token": token_of(page), "rule": "shelve", "reason": reason},
    )
    assert r.status_code == 200
    return r.text


def test_keep_it_postpones_the_shelve_once_and_says_the_new_date(
    client: TestClient, moto_store: DynamoTimerStore, alerts: RecordingNotices, clock: Clock
) -> None:
    page = open_page(client)
    assert "Keep it 2 weeks longer" in page
    after = keep_it(client, page)
    assert "Postponed by 2 weeks. It will now be shelved on Sunday 29 March 2026" in after
    assert "It will be shelved on <time" in after and "Sunday 29 March 2026" in after
    assert "It was postponed already: it can be postponed once." in after
    t = shelve_timer(moto_store)
    assert t.due_at == T0 + timedelta(days=28)
    entry = t.history[-1]
    assert (entry.what, entry.outcome) == ("extend", "granted")
    assert entry.detail["by"] == f"mail link to {READER}"
    assert entry.detail["reason"] == "thesis run"
    # restated as the trust rules restate a date: one change notice now, later ones on the new date
    pending = {(n.kind, n.due_at) for n in t.pending_notices()}
    assert (DATE_CHANGED, clock.now) in pending
    assert ("shelve_upcoming", T0 + timedelta(days=27)) in pending
    assert alerts.messages == []  # no limit reached with the defaults


def test_a_replayed_keep_does_nothing_more(
    client: TestClient, moto_store: DynamoTimerStore
) -> None:
    page = open_page(client)
    keep_it(client, page)
    first = shelve_timer(moto_store)
    again = keep_it(client, page)  # the same form, sent again
    assert "postponed already" in again
    assert shelve_timer(moto_store) == first


def test_keep_needs_a_reason(client: TestClient, moto_store: DynamoTimerStore) -> None:
    before = shelve_timer(moto_store)
    after = keep_it(client, open_page(client), reason="   ")
    assert "Say in a few words why you still need it." in after
    assert shelve_timer(moto_store) == before


def test_keep_without_the_csrf_token_changes_nothing(
    client: TestClient, moto_store: DynamoTimerStore
) -> None:
    open_page(client)
    before = shelve_timer(moto_store)
    for data in (
        {"rule": "shelve", "reason": "x"},
        {"csrf_token": "forged", "rule": "shelve", "reason": "x"},
    ):
        r = client.post(f"/resource/server/{SERVER}/keep", data=data)
        assert r.status_code == 403
    assert shelve_timer(moto_store) == before


def test_keep_on_another_resource_with_a_valid_session_is_refused(
    client: TestClient, moto_store: DynamoTimerStore
) -> None:
    page = open_page(client)
    before = shelve_timer(moto_store, OTHER_SERVER)
    r = client.post(
        f"/resource/server/{OTHER_SERVER}/keep",
        data={"csrf_token": token_of(page), "rule": "shelve", "reason": "mine now"},
    )
    assert r.status_code == 403
    assert shelve_timer(moto_store, OTHER_SERVER) == before


def test_a_script_in_a_server_name_is_shown_as_text(
    moto_store: DynamoTimerStore, clock: Clock
) -> None:
    name = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    stop_server(moto_store, THIRD, name=name)
    app = create_app(web_settings(), moto_store, clock=clock)
    with TestClient(app, base_url="http://testserver") as c:
        page = c.get(f"/l/{link_token(server=THIRD)}").text
        assert "<script>" not in page and "<img" not in page
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
        # and a reason with markup comes back as text too
        after = keep_it(c, page, THIRD, reason="<b>bold</b> & <script>x</script>")
        assert "<b>" not in after


def test_the_resource_limit_refuses_and_alerts_operators(
    moto_store: DynamoTimerStore, clock: Clock, alerts: RecordingNotices
) -> None:
    stop_server(moto_store)
    app = create_app(
        web_settings(max_extensions_per_resource=1), moto_store, notices=alerts, clock=clock
    )
    with TestClient(app, base_url="http://testserver") as c:
        keep_it(c, open_page(c))
        assert [m.kind for m in alerts.messages] == [EXTENSION_LIMIT]  # reached
        assert "resource: 1 of 1" in alerts.messages[0].detail["reason"]
        # the server runs, stops again: a new condition, but the resource used its one
        restart = T0 + timedelta(days=9)
        moto_store.apply([SHELVE.cancel(SERVER, event_time=restart)])
        stop_server(moto_store, at=restart + timedelta(hours=1))
        clock.now = restart + timedelta(days=2)
        page = open_page(c)
        assert "the most allowed" in page
        assert "Keep it 2 weeks longer" not in page
        before = shelve_timer(moto_store)
        after = keep_it(c, page)
        assert "the most allowed" in after
        assert shelve_timer(moto_store) == before
        assert [m.kind for m in alerts.messages] == [EXTENSION_LIMIT, EXTENSION_LIMIT]
        assert alerts.messages[1].detail["requested_by"] == f"mail link to {READER}"


def test_the_project_limit_counts_every_resource_of_the_project(
    moto_store: DynamoTimerStore, clock: Clock, alerts: RecordingNotices
) -> None:
    stop_server(moto_store)
    stop_server(moto_store, THIRD, name="second-vm")
    app = create_app(
        web_settings(max_extensions_per_project=1), moto_store, notices=alerts, clock=clock
    )
    with TestClient(app, base_url="http://testserver") as c:
        assert "Postponed by 2 weeks" in keep_it(c, open_page(c))
        page = html.unescape(open_page(c, THIRD))
        assert "The project's resources were postponed once within 365 days" in page
        assert "Postponed" not in keep_it(c, page, THIRD)
        assert shelve_timer(moto_store, THIRD).extension == timedelta(0)
        assert [m.kind for m in alerts.messages] == [EXTENSION_LIMIT, EXTENSION_LIMIT]


class FakeNova:
    def __init__(self) -> None:
        self.metadata: dict[str, dict[str, str]] = {}

    def set_server_metadata(self, server_id: str, key: str, value: str) -> None:
        self.metadata.setdefault(server_id, {})[key] = value


def test_an_exemption_request_reaches_the_operators_and_their_answer_the_page(
    client: TestClient, moto_store: DynamoTimerStore, alerts: RecordingNotices, clock: Clock
) -> None:
    page = open_page(client)
    assert "Ask for an exemption" in page
    r = client.post(
        f"/resource/server/{SERVER}/exempt",
        data={"csrf_token": token_of(page), "reason": "long-running climate model"},
    )
    assert "Your request was sent to the operators" in r.text
    assert "The operators have not answered yet." in r.text
    assert [m.kind for m in alerts.messages] == [EXEMPTION_REQUESTED]
    (request,) = ExemptionRequests(moto_store).all("pending")
    assert request.requested_by == f"mail link to {READER}"
    assert request.reason == "long-running climate model"
    # asking again changes nothing
    client.post(
        f"/resource/server/{SERVER}/exempt", data={"csrf_token": token_of(page), "reason": "again"}
    )
    assert len(ExemptionRequests(moto_store).all()) == 1

    nova = FakeNova()
    decided = approve(
        moto_store, web_settings(), nova, request, "operator alice", "ok for a year", clock.now
    )
    assert decided.state == "approved"
    assert nova.metadata[SERVER]["reclaim:exempt"].startswith(
        "approved 2026-03-09 by operator alice"
    )
    with pytest.raises(DecisionError):
        refuse(moto_store, request, "operator bob", "no", clock.now)
    page = client.get(f"/resource/server/{SERVER}").text
    assert "Approved on 2026-03-09: “ok for a year”" in page
    outcomes = [(e.what, e.outcome) for e in shelve_timer(moto_store).history]
    assert ("exemption", "requested") in outcomes and ("exemption", "approved") in outcomes


def test_a_refused_request_says_so_and_sets_nothing(
    client: TestClient, moto_store: DynamoTimerStore, clock: Clock
) -> None:
    page = open_page(client)
    client.post(
        f"/resource/server/{SERVER}/exempt", data={"csrf_token": token_of(page), "reason": "please"}
    )
    (request,) = ExemptionRequests(moto_store).all("pending")
    refuse(moto_store, request, "operator bob", "start it when you need it", clock.now)
    assert ExemptionRequests(moto_store).all("pending") == []
    page = client.get(f"/resource/server/{SERVER}").text
    assert "Refused on 2026-03-09: “start it when you need it”" in page
    assert PROJECT in page


def test_keep_adds_its_whole_amount_to_the_date_the_person_was_shown(
    moto_store: DynamoTimerStore, clock: Clock
) -> None:
    # the first warning went out late (day 10 of 14): the action waits its full 7-day lead,
    # so the page said day 17, not the due date of day 14
    stop_server(moto_store)
    warn(moto_store, SERVER, T0 + timedelta(days=10))
    clock.now = T0 + timedelta(days=11)
    app = create_app(web_settings(), moto_store, clock=clock)
    with TestClient(app, base_url="http://testserver") as c:
        page = open_page(c)
        assert "Wednesday 18 March 2026" in page  # day 17
        after = keep_it(c, page)
        assert "It will now be shelved on Wednesday 1 April 2026" in after  # day 17 + 14


def test_a_projects_slots_are_taken_once_each_and_free_again_after_the_window(
    moto_store: DynamoTimerStore,
) -> None:
    ledger = Extensions(moto_store)
    at, window = T0, timedelta(days=30)
    first = ledger.claim_slot("p-slots", 2, window, at)
    second = ledger.claim_slot("p-slots", 2, window, at)
    assert first and second and first != second
    assert ledger.claim_slot("p-slots", 2, window, at + timedelta(days=29)) is None
    assert ledger.claim_slot("p-other", 2, window, at), "another project has its own"
    # a grant that did not happen gives its slot back; another's slot is not given back
    ledger.free_slot("p-slots", first.split("#")[0] + "#not-mine")
    assert ledger.claim_slot("p-slots", 2, window, at) is None
    ledger.free_slot("p-slots", first)
    assert ledger.claim_slot("p-slots", 2, window, at)
    # a window after its grant, a slot is free again
    assert ledger.claim_slot("p-slots", 2, window, at + window)
