"""The web pages attacked from the outside, as a hostile visitor would: altered links,
forged forms, replays and races, another project's pages, script in every field people
type, redirects off site, secrets in logs, floods and oversized input, a forged Host.

Each test asserts what the attacker sees (and what the store holds afterwards)."""

from __future__ import annotations

import base64
import contextlib
import html
import json
import logging
import re
import threading
import zlib
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx2 as httpx
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from reclaim.deadletters import DeadLetter, DeadLetterStore, dead_letter
from reclaim.policy.servers import SHELVE
from reclaim.store import DynamoTimerStore
from reclaim.sweeper import OpenStackCloud
from reclaim.sweeper.notices import RecordingNotices
from reclaim.timers import Timer
from reclaim.web.app import CSP, create_app
from reclaim.web.links import LinkGrant, sign
from reclaim.web.requests import ExemptionRequests, ask_exemption
from tests.web.conftest import (
    BASE,
    KEY,
    OTHER_PROJECT,
    OTHER_SERVER,
    PROJECT,
    READER,
    SERVER,
    T0,
    Clock,
    fail_for_good,
    link_token,
    stop_server,
    web_settings,
)
from tests.web.keystone_world import PASSWORDS, World, csrf_of, served, sign_in, world

__all__ = ["world"]

#: A second server of the first project: someone else's, in the same project.
NEIGHBOUR = "4d4d4d4d-0000-4000-8000-000000000004"
SCRIPT = '<script>alert("x")</script><img src=x onerror=alert(1)>'
ALPHA_VM = "a1a1a1a1-1111-4111-8111-111111111111"
GAMMA_VM = "c3c3c3c3-3333-4333-8333-333333333333"


def shelve_timer(store: DynamoTimerStore, server: str = SERVER) -> Timer:
    return next(t for t in store.timers_for("server", server) if t.rule == SHELVE.id)


def open_link(client: TestClient, token: str | None = None) -> str:
    r = client.get(f"/l/{token or link_token()}")
    assert r.status_code == 200, r.text
    return r.text


def keep(client: TestClient, page: str, server: str = SERVER, **extra: str) -> httpx.Response:
    data = {"csrf_token": csrf_of(page), "rule": "shelve", "reason": "thesis run", **extra}
    return client.post(f"/resource/server/{server}/keep", data=data)


def assert_headers(r: httpx.Response) -> None:
    assert r.headers.get("content-security-policy") == CSP, (r.status_code, dict(r.headers))
    assert "script-src" not in CSP and "unsafe-inline" not in CSP
    assert r.headers.get("x-frame-options") == "DENY"
    assert r.headers.get("x-content-type-options") == "nosniff"


# -- links -------------------------------------------------------------------------------


def _resigned_payload(token: str, **change: object) -> str:
    """The token with its payload changed and its old signature kept."""
    payload, sig = token.rsplit(".", 1)
    compressed = payload.startswith(".")
    raw = base64.urlsafe_b64decode(payload.lstrip(".") + "=" * (-len(payload.lstrip(".")) % 4))
    data = json.loads(zlib.decompress(raw) if compressed else raw)
    data.update(change)
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=") + "." + sig


def test_a_link_with_its_payload_altered_is_refused(client: TestClient, clock: Clock) -> None:
    token = link_token()
    for change in (
        {"r": OTHER_SERVER},
        {"p": OTHER_PROJECT},
        {"e": int((clock.now + timedelta(days=900)).timestamp())},
        {"t": "project"},
    ):
        r = client.get(f"/l/{_resigned_payload(token, **change)}")
        assert r.status_code == 400, change
        assert_headers(r)
    # cut anywhere, or with bytes added, it opens nothing
    for bad in (token[:-1], token[: len(token) // 2], token + "A", token.replace(".", "")):
        assert client.get(f"/l/{bad}").status_code == 400, bad
    assert client.get(f"/resource/server/{OTHER_SERVER}").status_code == 403
    assert client.get(f"/resource/server/{SERVER}").status_code == 403  # nothing was granted


def test_a_link_expires_at_its_second_and_a_session_keeps_no_expired_grant(
    client: TestClient, clock: Clock
) -> None:
    expires = clock.now + timedelta(hours=1)
    token = link_token(expires=expires)
    open_link(client, token)
    clock.now = expires
    assert client.get(f"/l/{token}").status_code == 410
    # the grant kept in the session ends with the link
    assert client.get(f"/resource/server/{SERVER}").status_code == 403


def test_a_link_for_a_resource_does_not_open_its_neighbour_in_the_same_project(
    moto_store: DynamoTimerStore, client: TestClient
) -> None:
    stop_server(moto_store, NEIGHBOUR, PROJECT, name="colleagues-vm")
    page = open_link(client)
    r = client.get(f"/resource/server/{NEIGHBOUR}")
    assert r.status_code == 403
    assert "colleagues-vm" not in r.text
    before = shelve_timer(moto_store, NEIGHBOUR)
    assert keep(client, page, NEIGHBOUR).status_code == 403
    r = client.post(
        f"/resource/server/{NEIGHBOUR}/exempt",
        data={"csrf_token": csrf_of(page), "reason": "mine now"},
    )
    assert r.status_code == 403
    assert shelve_timer(moto_store, NEIGHBOUR) == before
    assert ExemptionRequests(moto_store).all() == []


def test_a_form_naming_another_resource_or_rule_changes_nothing(
    moto_store: DynamoTimerStore, client: TestClient
) -> None:
    page = open_link(client)
    other = shelve_timer(moto_store, OTHER_SERVER)
    # the resource comes from the address, never the form: extra fields are ignored
    r = keep(client, page, resource_id=OTHER_SERVER, project_id=OTHER_PROJECT, rule="delete")
    assert r.status_code == 200
    assert "Nothing is scheduled for that any more." in r.text
    assert shelve_timer(moto_store, OTHER_SERVER) == other
    # another resource type with the same id is another page
    assert client.get(f"/resource/image/{SERVER}").status_code == 403
    assert (
        client.post(
            f"/resource/image/{SERVER}/keep", data={"csrf_token": csrf_of(page), "rule": "shelve"}
        ).status_code
        == 403
    )


# -- keep it: forged amounts, replays and races ------------------------------------------


@pytest.mark.parametrize(
    "forged",
    [
        {"days": "100000"},
        {"by": "-30"},
        {"amount": "NaN"},
        {"extension": "inf"},
        {"until": "2099-01-01T00:00:00+00:00"},
        {"due_at": "1970-01-01T00:00:00Z"},
    ],
)
def test_keep_moves_the_date_by_the_configured_amount_whatever_the_form_says(
    moto_store: DynamoTimerStore, client: TestClient, forged: dict[str, str]
) -> None:
    page = open_link(client)
    assert keep(client, page, **forged).status_code == 200
    assert shelve_timer(moto_store).due_at == T0 + timedelta(days=28)  # 14 d + 14 d, no more


def test_a_replayed_keep_after_the_date_moved_grants_nothing_more(
    moto_store: DynamoTimerStore, client: TestClient, clock: Clock
) -> None:
    page = open_link(client)
    keep(client, page)
    first = shelve_timer(moto_store)
    clock.now += timedelta(days=3)
    for _ in range(3):
        r = keep(client, page, reason="again")
        assert "postponed already" in r.text
    assert shelve_timer(moto_store) == first


def test_two_keeps_at_once_postpone_once(
    moto_store: DynamoTimerStore, clock: Clock, alerts: RecordingNotices
) -> None:
    stop_server(moto_store)
    app = create_app(web_settings(), moto_store, notices=alerts, clock=clock)
    with served(app) as url, httpx.Client(base_url=url, follow_redirects=True) as c:
        page = c.get(f"/l/{link_token()}")
        assert page.status_code == 200
        token = csrf_of(page.text)
        cookies = dict(c.cookies)
        results: list[int] = []
        start = threading.Barrier(4)

        def post() -> None:
            with httpx.Client(base_url=url, cookies=cookies) as mine:
                start.wait(timeout=60)
                r = mine.post(
                    f"/resource/server/{SERVER}/keep",
                    data={"csrf_token": token, "rule": "shelve", "reason": "race"},
                )
                results.append(r.status_code)

        threads = [threading.Thread(target=post) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert results == [303] * 4
    t = shelve_timer(moto_store)
    assert t.due_at == T0 + timedelta(days=28)
    grants = [e for e in t.history if e.what == "extend" and e.outcome == "granted"]
    assert len(grants) == 1


# -- CSRF and sessions --------------------------------------------------------------------


def test_csrf_missing_wrong_or_from_another_session_is_refused(
    moto_store: DynamoTimerStore, app: Starlette
) -> None:
    before = shelve_timer(moto_store)
    with (
        TestClient(app, base_url=BASE) as mallory,
        TestClient(app, base_url=BASE) as ada,
    ):
        theirs = csrf_of(open_link(mallory))
        open_link(ada)
        for data, headers in (
            ({}, {}),
            ({"csrf_token": ""}, {}),
            ({"csrf_token": "x" * 43}, {}),
            ({"csrf_token": theirs}, {}),  # valid, but another session's
            ({}, {"X-CSRF-Token": theirs}),
        ):
            r = ada.post(
                f"/resource/server/{SERVER}/keep",
                data={"rule": "shelve", "reason": "x", **data},
                headers=headers,
            )
            assert r.status_code == 403, (data, headers)
            assert_headers(r)
        # a JSON body or a multipart form carries no token either
        r = ada.post(f"/resource/server/{SERVER}/keep", json={"csrf_token": theirs})
        assert r.status_code == 403
    assert shelve_timer(moto_store) == before


@pytest.fixture
def site(world: World, moto_store: DynamoTimerStore, clock: Clock) -> Starlette:
    stop_server(moto_store, ALPHA_VM, world.projects["alpha"], name="alpha-analysis")
    stop_server(moto_store, GAMMA_VM, world.projects["gamma"], name="gamma-secret-work")
    return create_app(web_settings(keystone_url=world.auth_url), moto_store, clock=clock)


@pytest.fixture
def browser(site: Starlette) -> Iterator[TestClient]:
    with TestClient(site, base_url=BASE, follow_redirects=True) as c:
        yield c


def test_a_cookie_copied_before_sign_out_is_worth_nothing_after(
    browser: TestClient, site: Starlette, world: World
) -> None:
    sign_in(browser, "ann")
    stolen = dict(browser.cookies)
    token = csrf_of(browser.get("/projects").text)
    browser.post("/signout", data={"csrf_token": token})
    assert browser.get(f"/projects/{world.projects['alpha']}").url.path == "/signin"
    with TestClient(site, base_url=BASE, cookies=stolen, follow_redirects=False) as thief:
        r = thief.get(f"/projects/{world.projects['alpha']}")
        assert r.status_code == 303, "the copied cookie still opens ann's project page"


def test_a_forged_or_edited_session_cookie_is_ignored(browser: TestClient, world: World) -> None:
    sign_in(browser, "ann")
    cookie = browser.cookies["reclaim_session"]
    data, rest = cookie.split(".", 1)
    session = json.loads(base64.b64decode(data + "=" * (-len(data) % 4)))
    session["signin"]["operator"] = True
    session["signin"]["projects"].append([world.projects["gamma"], "gamma"])
    edited = base64.b64encode(json.dumps(session).encode()).decode() + "." + rest
    browser.cookies.clear()
    browser.cookies.set("reclaim_session", edited, domain="testserver")
    r = browser.get(f"/projects/{world.projects['gamma']}")
    assert r.url.path == "/signin"
    assert "gamma-secret-work" not in r.text


# -- projects and operators --------------------------------------------------------------


def test_a_member_reaches_no_other_project_by_any_address(
    browser: TestClient, world: World
) -> None:
    sign_in(browser, "ann")
    alpha, gamma = world.projects["alpha"], world.projects["gamma"]
    for path in (
        f"/projects/{gamma}",
        f"/projects/{gamma}?sort=resource&order=desc",
        f"/projects/{alpha}/../{gamma}",
        f"/projects/{alpha}%2F..%2F{gamma}",
        f"/projects/{gamma.upper()}",
        f"/projects/%20{gamma}",
        f"/resource/server/{GAMMA_VM}",
        "/operators",
    ):
        r = browser.get(path)
        assert "gamma-secret-work" not in r.text, path
        assert r.status_code in (403, 404), (path, r.status_code)
        assert_headers(r)
    for query in (
        f"?project={gamma}",
        f"?project_id={gamma}&sort=project_id",
        "?sort=__class__&order=desc",
        "?sort=due;DROP&order=1",
        "?sort=" + "x" * 5000,
    ):
        r = browser.get(f"/projects/{alpha}{query}")
        assert r.status_code == 200, query
        assert "gamma-secret-work" not in r.text
        assert "alpha-analysis" in r.text


def test_a_member_cannot_approve_an_exemption_nor_reset_the_breaker(
    site: Starlette, moto_store: DynamoTimerStore, clock: Clock
) -> None:
    ok, _ = ask_exemption(
        moto_store, RecordingNotices(), shelve_timer(moto_store, ALPHA_VM), "someone", "please",
        clock.now,
    )  # fmt: skip
    assert ok
    (asked,) = ExemptionRequests(moto_store).all()
    with TestClient(site, base_url=BASE, follow_redirects=False) as c:
        # signed out: sent to sign in, nothing decided
        page = c.get("/signin")
        r = c.post(
            f"/operators/requests/{asked.request_id}",
            data={"csrf_token": csrf_of(page.text), "decision": "approve", "reason": "x"},
        )
        assert r.status_code == 303 and r.headers["location"].startswith("/signin")
        c.follow_redirects = True
        sign_in(c, "ann")
        token = csrf_of(c.get("/projects").text)
        for decision in ("approve", "refuse"):
            r = c.post(
                f"/operators/requests/{asked.request_id}",
                data={"csrf_token": token, "decision": decision, "reason": "I say so"},
            )
            assert r.status_code == 403
    (still,) = ExemptionRequests(moto_store).all()
    assert still.state == "pending"


# -- what only operators see: actions failed for good ----------------------------------

#: A Keystone token as it would leak through an error message or a payload.
TOKEN = "gAAAAABm" + "Zk9xT2hUeVdQ" * 12


def test_a_failed_action_is_for_operators_only_and_its_reason_is_text(
    site: Starlette, moto_store: DynamoTimerStore, world: World
) -> None:
    why = f"shelve failed 5 times: {SCRIPT} (X-Auth-Token: {TOKEN})"
    fail_for_good(moto_store, ALPHA_VM, T0 + timedelta(days=7), why)
    with TestClient(site, base_url=BASE, follow_redirects=True) as c:
        assert c.get("/operators").url.path == "/signin"
        sign_in(c, "ann")  # a member of the failed server's own project
        r = c.get("/operators")
        assert r.status_code == 403 and "shelve failed" not in r.text
        for page in (c.get(f"/projects/{world.projects['alpha']}"),
                     c.get(f"/resource/server/{ALPHA_VM}")):  # fmt: skip
            assert "shelve failed" not in page.text and "reclaim reconcile" not in page.text
    with TestClient(site, base_url=BASE, follow_redirects=True) as olga:
        sign_in(olga, "olga")
        page = olga.get("/operators")
        section = page.text.split('id="failed"')[1].split("</section>")[0]
        assert "shelve failed 5 times: &lt;script&gt;" in section
        assert "<script>" not in page.text and "<img src=x" not in page.text
        assert TOKEN[:20] not in page.text and "X-Auth-Token: ***" in section
        assert_headers(page)


def hostile_letters(store: DynamoTimerStore, at: datetime) -> list[DeadLetter]:
    """Dead letters as a hostile sender makes them: script everywhere, a 1 MB body, a token
    in a field named for it and one bare, a reason kept without scrubbing (a replay's),
    invisible characters that turn text around."""
    body = {
        "event_type": f"compute.instance.{SCRIPT}",
        "payload": {"name": SCRIPT, "note": f"\u202egnp.exe\u200b {TOKEN}"},
        "_context_auth_token": TOKEN,
        "padding": "A " * 600_000,
    }
    big = dead_letter(body, stage="parse", reason=f"bad {SCRIPT}", now=at)
    raw = dead_letter(
        f"{TOKEN} \u202egnp.exe\u200b " + (SCRIPT + "\n") * 20, stage="decode",
        reason="body is not JSON", now=at, routing_key=SCRIPT,
    )  # fmt: skip
    again = raw.model_copy(update={"reason": f"ValueError: password=hunter2 {SCRIPT}"})
    letters = DeadLetterStore.beside(store)
    letters.record([big])
    letters.put(again)
    return [big, again]


def test_hostile_dead_letters_show_escaped_short_and_masked_to_operators_only(
    site: Starlette, moto_store: DynamoTimerStore, clock: Clock
) -> None:
    big, _ = hostile_letters(moto_store, clock.now)
    assert big.body_size > 1_000_000 and big.truncated
    with TestClient(site, base_url=BASE, follow_redirects=True) as c:
        sign_in(c, "ann")
        r = c.get("/operators")
        assert r.status_code == 403 and "could not use" not in r.text
    with TestClient(site, base_url=BASE, follow_redirects=True) as olga:
        sign_in(olga, "olga")
        page = olga.get("/operators")
    assert page.status_code == 200
    assert_headers(page)
    section = page.text.split('id="letters"')[1]
    assert "2 messages reclaim could not use" in section
    assert "<script>" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;" in section
    assert TOKEN[:12] not in page.text and "hunter2" not in page.text
    assert "password=***" in section and "*** \ufffdgnp.exe\ufffd" in section
    assert "\u202e" not in page.text and "\u200b" not in page.text
    assert len(page.text) < 40_000  # a 1 MB message shows as its head and its size
    assert f"{big.body_size} bytes, only the head kept" in section
    heads = re.findall(r'data-label="Message"><code>([^<]*)</code>', section)
    assert len(heads) == 2 and all(len(html.unescape(h)) <= 160 for h in heads)


def test_no_form_replays_a_dead_letter(
    site: Starlette, moto_store: DynamoTimerStore, clock: Clock
) -> None:
    big, _ = hostile_letters(moto_store, clock.now)
    with TestClient(site, base_url=BASE, follow_redirects=True) as olga:
        sign_in(olga, "olga")
        page = olga.get("/operators")
        assert "/deadletters" not in page.text.split('id="letters"')[1]  # commands only
        token = csrf_of(page.text)
        for path in (f"/operators/deadletters/{big.id}/replay", "/operators/deadletters/replay"):
            assert olga.post(path, data={"csrf_token": token, "id": big.id}).status_code == 404
            assert olga.post(path, data={"id": big.id}).status_code == 403
    (kept,) = [d for d in DeadLetterStore.beside(moto_store).list() if d.id == big.id]
    assert kept.state == "open" and kept.attempts == 1


# -- script and HTML in every field people type ------------------------------------------


def test_script_in_names_and_reasons_is_shown_as_text_everywhere(
    world: World, moto_store: DynamoTimerStore, clock: Clock
) -> None:
    stop_server(moto_store, ALPHA_VM, world.projects["alpha"], name=SCRIPT)

    class Cloud:
        def set_server_metadata(self, server_id: str, key: str, value: str) -> None:
            pass

    site = create_app(
        web_settings(keystone_url=world.auth_url), moto_store, clock=clock, cloud=Cloud()
    )
    with TestClient(site, base_url=BASE, follow_redirects=True) as c:
        sign_in(c, "ann")
        page = c.get(f"/resource/server/{ALPHA_VM}")
        r = c.post(
            f"/resource/server/{ALPHA_VM}/exempt",
            data={"csrf_token": csrf_of(page.text), "reason": SCRIPT},
        )
        r = c.post(
            f"/resource/server/{ALPHA_VM}/keep",
            data={"csrf_token": csrf_of(r.text), "rule": "shelve", "reason": SCRIPT},
        )
        pages = [r, c.get(f"/projects/{world.projects['alpha']}"), c.get("/projects")]
    with TestClient(site, base_url=BASE, follow_redirects=True) as olga:
        sign_in(olga, "olga")
        ops = olga.get("/operators")
        pages.append(ops)
        (asked,) = ExemptionRequests(moto_store).all()
        r = olga.post(
            f"/operators/requests/{asked.request_id}",
            data={"csrf_token": csrf_of(ops.text), "decision": "refuse", "reason": SCRIPT},
        )
        pages += [r, olga.get("/operators")]
    for p in pages:
        assert p.status_code == 200
        assert "<script>" not in p.text and "<img src=x" not in p.text, p.url
        assert_headers(p)
    assert "&lt;script&gt;" in pages[0].text
    assert "&lt;script&gt;" in pages[-1].text


def test_a_project_name_from_keystone_is_text_and_read_only_for_who_may_see_the_resource(
    world: World, moto_store: DynamoTimerStore, clock: Clock
) -> None:
    cloud = world.server.cloud
    hostile = cloud.identity.create_project(f"p-{SCRIPT}"[:64]).id
    stop_server(moto_store, ALPHA_VM, hostile, name="alpha-analysis")
    site = create_app(web_settings(), moto_store, clock=clock,
                      cloud=OpenStackCloud(world.server.connect()))  # fmt: skip
    cloud.requests.clear()
    with TestClient(site, base_url=BASE, follow_redirects=True) as c:
        # a link for another resource: refused, and Keystone is not asked about the project
        open_link(c)
        assert c.get(f"/resource/server/{ALPHA_VM}").status_code == 403
        assert not cloud.requests.filter(method="GET", path_regex=f"/projects/{hostile}")
        page = c.get(f"/l/{link_token(ALPHA_VM, hostile)}")
    assert page.status_code == 200
    assert_headers(page)
    assert "<script>" not in page.text and "<img src=x" not in page.text
    assert "p-&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text


# -- security headers on every answer ----------------------------------------------------


def test_every_answer_carries_the_security_headers(client: TestClient) -> None:
    answers = [
        client.get("/healthz"),
        client.get("/no/such/page"),
        client.post("/healthz"),  # 405 (no CSRF: 403 first)
        client.put(f"/l/{link_token()}"),
        client.get("/l/garbage"),
        client.get(f"/resource/server/{SERVER}"),
        client.post(
            f"/resource/server/{SERVER}/keep",
            content=b"x" * 70_000,
            headers={"content-type": "application/x-www-form-urlencoded"},
        ),
        client.get("/static/reclaim.css"),
        client.get("/static/../app.py"),
    ]
    for r in answers:
        assert_headers(r)
    assert [r.status_code for r in answers[:7]] == [200, 404, 403, 403, 400, 403, 413]
    page = open_link(client)
    r = client.post("/healthz", data={"csrf_token": csrf_of(page)})
    assert r.status_code == 405
    assert_headers(r)


def test_an_overlong_resource_id_is_refused_with_a_page_not_a_crash(
    app: Starlette,
) -> None:
    with TestClient(app, base_url=BASE, raise_server_exceptions=False, follow_redirects=False) as c:
        for path in (
            "/resource/server/" + "a" * 5000,
            "/resource/" + "t" * 5000 + "/x",
            "/projects/" + "p" * 5000,
            "/l/" + "x" * 20000,
        ):
            r = c.get(path)
            assert r.status_code in (303, 400, 403, 404), (path[:40], r.status_code)
            assert_headers(r)


# -- redirects, Host, logs, floods -------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/",
        "/\\evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "/%2F%2Fevil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "/%5Cevil.example",
        " //evil.example",
        "/\x00//evil.example",
    ],
)
def test_signing_in_never_sends_people_off_site(browser: TestClient, target: str) -> None:
    browser.follow_redirects = False
    page = browser.get("/signin", params={"next": target})
    assert page.status_code == 200
    r = browser.post(
        "/signin",
        data={
            "csrf_token": csrf_of(page.text),
            "method": "password",
            "user_name": "ann",
            "password": PASSWORDS["ann"],
            "next": target,
        },
    )
    assert r.status_code == 303
    location = r.headers["location"]
    parsed = httpx.URL(location)
    assert not parsed.host, location
    assert location.startswith("/") and not location.startswith("//"), location
    # browsers drop tabs and newlines and read a backslash as a slash
    cleaned = location.replace("\t", "").replace("\n", "").replace("\\", "/")
    assert not cleaned.startswith("//"), location
    # signed in already, the sign-in page redirects too
    again = browser.get("/signin", params={"next": target})
    assert again.status_code == 303 and not again.headers["location"].startswith("//")


def test_a_forged_host_reaches_no_link_or_redirect(client: TestClient) -> None:
    evil = {"host": "evil.example", "x-forwarded-host": "evil.example"}
    r = client.get(f"/l/{link_token()}", headers=evil, follow_redirects=False)
    assert r.status_code == 303
    assert "evil.example" not in r.headers["location"]
    page = client.get(f"/resource/server/{SERVER}", headers=evil)
    assert "evil.example" not in page.text
    r = client.post(
        f"/resource/server/{SERVER}/keep",
        data={"csrf_token": csrf_of(page.text), "rule": "shelve", "reason": "x"},
        headers=evil,
        follow_redirects=False,
    )
    assert "evil.example" not in r.headers["location"]


def test_a_mail_link_is_built_on_the_configured_address_only() -> None:
    from reclaim.mailer.addresses import Person
    from reclaim.notices.schema import NoticeMessage
    from reclaim.web.links import mail_links

    settings = web_settings(base_url="https://reclaim.example.org")
    make = mail_links(settings.web, lambda: T0)
    assert make is not None
    fields = NoticeMessage.model_fields
    assert "resource_id" in fields
    notice = NoticeMessage.model_construct(
        resource_type="server", resource_id=SERVER, project_id=PROJECT, operator=False,
        due_at=T0 + timedelta(days=14), notice_at=T0,
    )  # fmt: skip
    link = make(notice, Person(address=READER))  # type: ignore[call-arg]
    assert link.startswith("https://reclaim.example.org/l/")


def test_no_link_token_nor_password_is_logged(
    site: Starlette, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = link_token()
    with TestClient(site, base_url=BASE, follow_redirects=True) as browser:
        browser.get(f"/l/{token}")
        browser.get(f"/l/{token[:-3]}xyz")
        sign_in(browser, "ann")
    with TestClient(site, base_url=BASE, follow_redirects=True) as browser:
        sign_in(browser, "bob", password="not-" + PASSWORDS["bob"])
    # the test's own HTTP client logs what it asks for: only the application's logs count
    logged = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))
    )
    assert token not in logged
    assert token.split(".")[1] not in logged  # nor its signature
    assert PASSWORDS["ann"] not in logged
    assert "not-" + PASSWORDS["bob"] not in logged


def test_link_use_and_keep_are_rate_limited(moto_store: DynamoTimerStore, clock: Clock) -> None:
    stop_server(moto_store)
    app = create_app(web_settings(links_per_address="3/minute"), moto_store, clock=clock)
    with TestClient(app, base_url=BASE, follow_redirects=False) as c:
        codes = [c.get(f"/l/{link_token()}").status_code for _ in range(3)]
        assert codes == [303] * 3
        r = c.get(f"/l/{link_token()}")
        assert r.status_code == 429
        assert_headers(r)
        # forged tokens count too: guessing is as slow as using
        assert c.get("/l/guess").status_code == 429


def test_sign_in_is_rate_limited_whatever_the_user_name(
    world: World, moto_store: DynamoTimerStore, clock: Clock
) -> None:
    app = create_app(
        web_settings(keystone_url=world.auth_url, signin_per_address="3/minute"),
        moto_store,
        clock=clock,
    )
    with TestClient(app, base_url=BASE, follow_redirects=True) as c:
        codes = [sign_in(c, f"guess{i}", password="wrong").status_code for i in range(4)]
    assert codes[:3] == [401] * 3
    assert codes[3] == 429


def test_an_overlong_reason_is_refused_or_cut(
    moto_store: DynamoTimerStore, client: TestClient
) -> None:
    page = open_link(client)
    r = keep(client, page, reason="r" * 70_000)
    assert r.status_code == 413
    r = keep(client, page, reason="why " * 15_000)  # 60 kB, under the body limit
    assert r.status_code == 200
    (grant,) = [e for e in shelve_timer(moto_store).history if e.what == "extend"]
    assert len(grant.detail["reason"]) <= 1000


def test_a_signed_link_naming_a_resource_of_no_project_opens_only_that(
    client: TestClient,
) -> None:
    # a genuine link without a project opens its resource, and nothing of any project
    token = sign(LinkGrant("server", "no-such-server", None, READER, T0 + timedelta(days=60)), KEY)
    open_link(client, token)
    assert client.get(f"/resource/server/{SERVER}").status_code == 403
    assert client.get(f"/projects/{PROJECT}", follow_redirects=False).status_code == 303


def test_a_failure_inside_is_a_page_with_the_security_headers(
    moto_store: DynamoTimerStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DynamoDB throttles, or refuses a key too long for it: the visitor gets the error page
    # with the same headers as every other answer, and no traceback
    app = create_app(web_settings(), moto_store, clock=clock)

    def broken(*_args: object) -> list[Timer]:
        raise RuntimeError("ProvisionedThroughputExceededException secret-internal-detail")

    monkeypatch.setattr(moto_store, "timers_for", broken)
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as c:
        c.get(f"/l/{link_token()}", follow_redirects=False)
        r = c.get(f"/resource/server/{SERVER}")
    assert r.status_code == 500
    assert_headers(r)
    assert r.headers.get("cache-control") == "no-store"
    assert "secret-internal-detail" not in r.text
    assert "Traceback" not in r.text


def test_two_processes_keeping_two_resources_of_a_project_stay_within_its_limit(
    moto_store: DynamoTimerStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reclaim.web.requests import Extensions

    stop_server(moto_store)
    stop_server(moto_store, NEIGHBOUR, PROJECT, name="colleagues-vm")
    counted = Extensions.count
    both_counted = threading.Barrier(2)

    def count(self: Extensions, project_id: str, since: object) -> int:
        n: int = counted(self, project_id, since)  # type: ignore[arg-type]
        # the two requests read the ledger at the same moment, as two processes may
        with contextlib.suppress(threading.BrokenBarrierError):
            both_counted.wait(timeout=20)
        return n

    settings = web_settings(max_extensions_per_project=1)
    apps = [create_app(settings, moto_store, clock=clock) for _ in range(2)]
    with served(apps[0]) as one, served(apps[1]) as two:
        forms = []
        for url, server in ((one, SERVER), (two, NEIGHBOUR)):
            c = httpx.Client(base_url=url, follow_redirects=True)
            page = c.get(f"/l/{link_token(server=server)}")
            forms.append((c, server, csrf_of(page.text)))
        monkeypatch.setattr(Extensions, "count", count)

        def post(c: httpx.Client, server: str, token: str) -> None:
            c.post(
                f"/resource/server/{server}/keep",
                data={"csrf_token": token, "rule": "shelve", "reason": "race"},
            )

        threads = [threading.Thread(target=post, args=f) for f in forms]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        for c, _s, _t in forms:
            c.close()
    granted = [s for s in (SERVER, NEIGHBOUR) if shelve_timer(moto_store, s).extension]
    assert len(granted) == 1, f"the project's limit is 1, {len(granted)} granted"


def test_signing_out_forgets_the_pages_links_opened_too(browser: TestClient, world: World) -> None:
    # on a shared computer: a mail's link opened, then a sign-in, then signing out; the
    # next person at that browser sees none of it
    token = sign(
        LinkGrant("server", GAMMA_VM, world.projects["gamma"], READER, T0 + timedelta(days=60)), KEY
    )
    assert browser.get(f"/l/{token}").status_code == 200
    sign_in(browser, "ann")
    browser.post("/signout", data={"csrf_token": csrf_of(browser.get("/projects").text)})
    r = browser.get(f"/resource/server/{GAMMA_VM}")
    assert r.status_code == 403
    assert "gamma-secret-work" not in r.text
