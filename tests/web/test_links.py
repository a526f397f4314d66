"""Mail links: each opens one resource's page for one recipient, until it expires, and
nothing else."""

from __future__ import annotations

from datetime import timedelta

from starlette.testclient import TestClient

from tests.web.conftest import (
    OTHER_PROJECT,
    OTHER_SERVER,
    PROJECT,
    SERVER,
    T0,
    Clock,
    link_token,
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
