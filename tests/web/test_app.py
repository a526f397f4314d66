"""The application's frame: health, security headers, error pages, sessions, CSRF."""

from __future__ import annotations

import re

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from reclaim.settings import Settings
from reclaim.store import DynamoTimerStore
from reclaim.web.app import CSP, create_app
from tests.web.conftest import BASE, Clock, link_token, stop_server, web_settings
from tests.web.keystone_world import served


def test_healthz_answers_ok(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.text == "ok\n"


def test_every_response_carries_strict_security_headers(client: TestClient) -> None:
    for path in ("/healthz", "/static/reclaim.css", "/no/such/page", f"/l/{link_token()}"):
        r = client.get(path)
        h = r.headers
        assert h["content-security-policy"] == CSP, path
        assert "script-src" not in CSP and "'unsafe-inline'" not in CSP
        assert "frame-ancestors 'none'" in CSP
        assert h["x-frame-options"] == "DENY"
        assert h["x-content-type-options"] == "nosniff"
        assert h["referrer-policy"] == "no-referrer"
        assert "strict-transport-security" not in h  # plain http on localhost


def test_hsts_only_over_https(app: Starlette) -> None:
    with TestClient(app, base_url="https://reclaim.example.org") as c:
        assert c.get("/healthz").headers["strict-transport-security"].startswith("max-age=")


def test_pages_have_no_inline_script_or_style(client: TestClient) -> None:
    html = client.get(f"/l/{link_token()}").text
    assert "<script" not in html
    assert "style=" not in html and "<style" not in html
    assert re.search(r'<link rel="stylesheet" href="/static/reclaim.css">', html)
    assert '<meta name="viewport"' in html


def test_unknown_page_is_a_page_for_people(client: TestClient) -> None:
    r = client.get("/no/such/page")
    assert r.status_code == 404
    assert "<h1>Not found</h1>" in r.text


def test_a_post_without_the_csrf_token_is_refused_before_any_endpoint(
    client: TestClient,
) -> None:
    client.get(f"/l/{link_token()}")  # a session with a token
    r = client.post("/healthz", data={"reason": "x"})
    assert r.status_code == 403
    assert "not sent from the page it belongs to" in r.text


def test_an_oversized_form_is_refused(client: TestClient) -> None:
    r = client.post("/healthz", data={"reason": "x" * 70_000})
    assert r.status_code == 413


def test_no_key_no_app(moto_store: DynamoTimerStore) -> None:
    with pytest.raises(ValueError, match="RECLAIM_WEB__SECRET_KEY"):
        create_app(Settings(), moto_store)


def test_the_session_cookie_is_httponly_and_lax(client: TestClient) -> None:
    r = client.get(f"/l/{link_token()}", follow_redirects=False)
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie  # http://localhost
    assert BASE.startswith("http://")


def test_a_slow_store_call_holds_up_no_other_request(
    moto_store: DynamoTimerStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages and forms call the store and the cloud, which block: they run in worker
    threads, so one slow call (a throttled table) leaves the other visitors served."""
    import threading

    import httpx2 as httpx

    from reclaim.web.requests import ExemptionRequests

    stop_server(moto_store)
    app = create_app(web_settings(), moto_store, clock=clock)
    entered, release = threading.Event(), threading.Event()
    get = ExemptionRequests.get

    def slow(self: ExemptionRequests, rid: str) -> object:
        entered.set()
        release.wait(timeout=120)
        return get(self, rid)

    monkeypatch.setattr(ExemptionRequests, "get", slow)
    pages: list[int] = []
    with (
        served(app) as url,
        httpx.Client(base_url=url, follow_redirects=True, timeout=150) as visitor,
    ):

        def open_page() -> None:
            pages.append(visitor.get(f"/l/{link_token()}").status_code)

        waiting = threading.Thread(target=open_page)
        waiting.start()
        assert entered.wait(timeout=60), "the page did not reach the store"
        try:
            with httpx.Client(base_url=url, timeout=30) as other:
                assert other.get("/healthz").status_code == 200
        finally:
            release.set()
            waiting.join(timeout=150)
    assert pages == [200]
