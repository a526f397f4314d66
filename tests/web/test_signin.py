"""Signing in with Keystone (the simulated cloud's, over HTTP): who sees what, refusals,
CSRF, rate limits, and sessions that end with the Keystone token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from reclaim.store import DynamoTimerStore
from reclaim.web.app import create_app
from reclaim.web.session import safe_next
from reclaim_sim import SimServer
from reclaim_sim.server import ADMIN_CLOUD
from tests.support.waiting import wait_for
from tests.web.conftest import BASE, Clock, stop_server, web_settings
from tests.web.keystone_world import World, csrf_of, make_world, sign_in, world

__all__ = ["world"]

ALPHA_VM = "11111111-1111-4111-8111-111111111111"
GAMMA_VM = "33333333-3333-4333-8333-333333333333"


@pytest.fixture
def site(world: World, moto_store: DynamoTimerStore, clock: Clock) -> Starlette:
    stop_server(moto_store, ALPHA_VM, world.projects["alpha"], name="alpha-analysis")
    stop_server(moto_store, GAMMA_VM, world.projects["gamma"], name="gamma-secret-work")
    return create_app(web_settings(keystone_url=world.auth_url), moto_store, clock=clock)


@pytest.fixture
def browser(site: Starlette) -> Iterator[TestClient]:
    with TestClient(site, base_url=BASE, follow_redirects=True) as c:
        yield c


def test_a_member_signs_in_and_sees_only_their_own_projects(
    browser: TestClient, world: World
) -> None:
    r = sign_in(browser, "ann")
    assert r.status_code == 200
    assert r.url.path == "/projects"
    assert "Signed in as <strong>ann</strong>" in r.text
    assert "alpha" in r.text and "beta" in r.text
    assert "gamma" not in r.text and "ops" not in r.text
    assert "1 scheduled action" in r.text  # alpha's stopped server

    alpha = browser.get(f"/projects/{world.projects['alpha']}")
    assert alpha.status_code == 200
    assert "alpha-analysis" in alpha.text
    assert "gamma-secret-work" not in alpha.text
    # another project's page and resource: refused, and nothing of them shown
    for path in (f"/projects/{world.projects['gamma']}", f"/resource/server/{GAMMA_VM}"):
        other = browser.get(path)
        assert other.status_code == 403, path
        assert "gamma-secret-work" not in other.text
    # an id that does not exist is refused the same way (ids cannot be probed)
    assert browser.get("/projects/0123456789abcdef0123456789abcdef").status_code == 403
    # her own server's page opens through the sign-in
    mine = browser.get(f"/resource/server/{ALPHA_VM}")
    assert mine.status_code == 200
    assert "alpha-analysis" in mine.text


def test_another_member_sees_their_project_and_not_anns(browser: TestClient, world: World) -> None:
    r = sign_in(browser, "bob")
    assert "gamma" in r.text and "alpha" not in r.text
    assert browser.get(f"/resource/server/{ALPHA_VM}").status_code == 403
    assert "gamma-secret-work" in browser.get(f"/projects/{world.projects['gamma']}").text


def test_a_page_asked_for_before_signing_in_opens_after(browser: TestClient, world: World) -> None:
    wanted = f"/projects/{world.projects['alpha']}?sort=resource"
    first = browser.get(wanted)
    assert first.url.path == "/signin"
    r = sign_in(browser, "ann", next=wanted)
    assert r.url.path == f"/projects/{world.projects['alpha']}"
    assert r.url.query == b"sort=resource"


@pytest.mark.parametrize("bad", ["//evil.example.org/x", "https://evil.example.org/", "\\\\x", ""])
def test_sign_in_never_sends_people_off_site(bad: str) -> None:
    assert safe_next(bad) == "/projects"


def test_wrong_password_is_refused_and_nothing_is_shown(browser: TestClient) -> None:
    r = sign_in(browser, "ann", "not-her-password")
    assert r.status_code == 401
    assert "Keystone did not accept these credentials." in r.text
    assert browser.get("/projects").url.path == "/signin"


def test_sign_in_without_the_csrf_token_is_refused(browser: TestClient) -> None:
    browser.get("/signin")
    r = browser.post(
        "/signin", data={"method": "password", "user_name": "ann", "password": "ann-secret"}
    )
    assert r.status_code == 403
    assert browser.get("/projects").url.path == "/signin"


def test_sign_out_ends_the_session_and_its_csrf_token(browser: TestClient) -> None:
    page = sign_in(browser, "ann")
    token = csrf_of(page.text)
    r = browser.post("/signout", data={"csrf_token": token})
    assert r.url.path == "/signin"
    assert "You have signed out." in r.text
    assert browser.get("/projects").url.path == "/signin"
    # the form token of the signed-in page is worth nothing now
    assert browser.post("/signout", data={"csrf_token": token}).status_code == 403


def test_refused_sign_ins_are_limited_per_user_name(browser: TestClient) -> None:
    for _ in range(5):
        assert sign_in(browser, "bob", "guess").status_code == 401
    # the sixth attempt is refused before Keystone is asked, right password or not
    r = sign_in(browser, "bob")
    assert r.status_code == 429
    assert "Too many sign-in attempts" in r.text
    # another user from the same address is not locked out by bob's
    assert sign_in(browser, "ann").status_code == 200


def test_sign_in_attempts_are_limited_per_address(
    world: World, moto_store: DynamoTimerStore
) -> None:
    app = create_app(
        web_settings(keystone_url=world.auth_url, signin_per_address="3/minute"), moto_store
    )
    with TestClient(app, base_url=BASE) as c:
        codes = [sign_in(c, "olga", "wrong").status_code for _ in range(3)]
        assert codes == [401, 401, 401]
        assert sign_in(c, "ann").status_code == 429
    # the count is the application's: a fresh one starts from nothing
    fresh = create_app(web_settings(keystone_url=world.auth_url), moto_store)
    with TestClient(fresh, base_url=BASE) as c:
        assert sign_in(c, "ann").status_code == 200


def test_no_session_outlives_the_keystone_token(moto_store: DynamoTimerStore) -> None:
    cloud, projects, _users = make_world(token_ttl_seconds=3)
    with SimServer(cloud) as server:
        app = create_app(web_settings(keystone_url=server.auth_url), moto_store)
        with TestClient(app, base_url=BASE) as c:
            r = sign_in(c, "ann")
            assert r.url.path == "/projects"
            page = f"/projects/{projects['alpha']}"
            assert c.get(page).status_code == 200
            # the cookie lives an hour (web.session_lifetime), the token 3 s: the token wins
            wait_for(lambda: c.get(page).url.path == "/signin", timeout=30, every=0.5)
            assert "Sign in" in c.get(page).text
    cloud.close()


def test_keystone_down_is_told_as_such(moto_store: DynamoTimerStore) -> None:
    app = create_app(web_settings(keystone_url="http://127.0.0.1:9/identity"), moto_store)
    with TestClient(app, base_url=BASE) as c:
        r = sign_in(c, "ann")
        assert r.status_code == 503
        assert "Keystone cannot be reached" in r.text


def test_a_member_signs_in_with_an_application_credential(
    browser: TestClient, world: World
) -> None:
    idn = world.server.cloud.identity
    cred = idn.create_application_credential(
        world.users["ann"], world.projects["alpha"], f"web-{id(browser)}", secret="s3cret-app"
    )
    page = browser.get("/signin")
    form = {"csrf_token": csrf_of(page.text), "method": "application_credential",
            "credential_id": cred.id, "credential_secret": "s3cret-app", "next": "/projects"}  # fmt: skip
    r = browser.post("/signin", data=form)
    assert r.url.path == "/projects"
    assert "alpha" in r.text and "beta" not in r.text  # the credential's one project
    assert browser.get(f"/resource/server/{ALPHA_VM}").status_code == 200
    form["credential_secret"] = "wrong"
    browser.post("/signout", data={"csrf_token": csrf_of(r.text)})
    form["csrf_token"] = csrf_of(browser.get("/signin").text)
    assert browser.post("/signin", data=form).status_code == 401


def test_without_keystone_url_the_clouds_yaml_entry_names_keystone(
    world: World, moto_store: DynamoTimerStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = world.server.write_clouds_yaml(tmp_path / "clouds.yaml")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))
    monkeypatch.delenv("OS_CLOUD", raising=False)
    app = create_app(web_settings(), moto_store)
    with TestClient(app, base_url=BASE) as c:
        # no entry named: there is no Keystone to ask
        assert sign_in(c, "ann").status_code == 503
    app = create_app(web_settings(), moto_store)
    app.state.keystone_cloud = ADMIN_CLOUD  # as reclaim web --cloud sets it
    with TestClient(app, base_url=BASE, follow_redirects=True) as c:
        assert sign_in(c, "ann").url.path == "/projects"
