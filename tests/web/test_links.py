"""Mail links: each opens one resource's page for one recipient, until it expires, and
nothing else."""

from __future__ import annotations

from datetime import timedelta

from starlette.testclient import TestClient

from reclaim.store import DynamoTimerStore
from reclaim.web.app import create_app
from tests.web.conftest import (
    OTHER_PROJECT,
    OTHER_SERVER,
    PROJECT,
    SERVER,
    T0,
    Clock,
    link_token,
    stop_server,
    web_settings,
)


def test_a_link_opens_its_resource_page(client: TestClient) -> None:
    r = client.get(f"/l/{link_token()}")
    assert r.status_code == 200
    assert str(r.url).endswith(f"/resource/server/{SERVER}")
    assert "analysis-vm" in r.text
    assert "It will be shelved on" in r.text
    assert "Sunday 15 March 2026" in r.text  # stopped 1 March + 14 days
    assert "stopped since 2026-03-01" in r.text
    assert "after 2 weeks in said state" in r.text  # the clause, with the configured period


def test_a_changed_link_is_refused_with_a_page_that_says_so(client: TestClient) -> None:
    token = link_token()
    for bad in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), token[:20], "x"):
        r = client.get(f"/l/{bad}")
        assert r.status_code == 400, bad
        assert "This link is not valid" in r.text
    r = client.get(f"/l/{link_token(key='another-key-' + 'y' * 40)}")
    assert r.status_code == 400


def test_an_expired_link_is_refused(client: TestClient, clock: Clock) -> None:
    token = link_token(expires=T0 + timedelta(days=30))
    clock.now = T0 + timedelta(days=30, seconds=1)
    r = client.get(f"/l/{token}")
    assert r.status_code == 410
    assert "This link expired on Tuesday 31 March 2026" in r.text


def test_a_valid_link_does_not_open_another_resource(client: TestClient) -> None:
    assert client.get(f"/l/{link_token()}").status_code == 200
    r = client.get(f"/resource/server/{OTHER_SERVER}")
    assert r.status_code == 403
    assert "someone-elses-vm" not in r.text
    assert OTHER_PROJECT not in r.text


def test_a_link_naming_another_project_opens_nothing(client: TestClient) -> None:
    # a genuine signature over server A with project B (say a server moved): no page
    token = link_token(server=OTHER_SERVER, project=PROJECT)
    assert client.get(f"/l/{token}").status_code == 403


def test_without_a_link_no_page(client: TestClient) -> None:
    r = client.get(f"/resource/server/{SERVER}")
    assert r.status_code == 403
    assert "analysis-vm" not in r.text


def test_a_link_used_again_opens_the_same_page(client: TestClient) -> None:
    token = link_token()
    assert client.get(f"/l/{token}").status_code == 200
    assert client.get(f"/l/{token}").status_code == 200


def test_link_use_is_rate_limited_per_address(moto_store: DynamoTimerStore, clock: Clock) -> None:
    stop_server(moto_store)
    app = create_app(web_settings(links_per_address="3/minute"), moto_store, clock=clock)
    with TestClient(app, base_url="http://testserver") as c:
        for _ in range(3):
            assert c.get(f"/l/{link_token()}").status_code == 200
        r = c.get(f"/l/{link_token()}")
        assert r.status_code == 429
        assert "Too many pages opened from your address" in r.text
        assert c.get("/l/tampered").status_code == 429  # guesses count too
