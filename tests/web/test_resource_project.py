"""The resource page names the resource's project: a signed-in member's project by the
name their sign-in brought, a mail link's by the name Keystone gives it (read through the
cloud, remembered a while), and by its id when Keystone cannot tell: never an error."""

from __future__ import annotations

from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from reclaim.store import DynamoTimerStore
from reclaim.sweeper import OpenStackCloud
from reclaim.web.app import create_app
from tests.web.conftest import BASE, T0, Clock, link_token, stop_server, web_settings
from tests.web.keystone_world import World, sign_in, world

__all__ = ["world"]

VM = "e5e5e5e5-5555-4555-8555-555555555555"


def project_row(page: str) -> str:
    return page.split("<dt>Project</dt>")[1].split("</dd>")[0]


@pytest.fixture
def alpha(world: World, moto_store: DynamoTimerStore) -> str:
    stop_server(moto_store, VM, world.projects["alpha"], name="alpha-analysis")
    world.server.cloud.faults.clear()
    world.server.cloud.requests.clear()
    return world.projects["alpha"]


def keystone_reads(world: World, project: str) -> int:
    return len(world.server.cloud.requests.filter(method="GET", path_regex=f"/projects/{project}$"))


def test_a_mail_link_shows_the_name_keystone_gives_the_project(
    world: World, moto_store: DynamoTimerStore, alpha: str
) -> None:
    cloud = OpenStackCloud(world.server.connect())
    app = create_app(web_settings(), moto_store, clock=Clock(T0 + timedelta(days=8)), cloud=cloud)
    with TestClient(app, base_url=BASE, follow_redirects=True) as c:
        page = c.get(f"/l/{link_token(VM, alpha)}")
        assert page.status_code == 200
        assert (
            project_row(page.text) == f'<dd>alpha <span class="muted">(<code>{alpha}</code>)</span>'
        )
        assert keystone_reads(world, alpha) == 1
        for _ in range(3):  # remembered: Keystone is not asked on every view
            assert "alpha <span" in project_row(c.get(f"/resource/server/{VM}").text)
        assert keystone_reads(world, alpha) == 1


def test_when_keystone_fails_the_page_shows_the_project_id(
    world: World, moto_store: DynamoTimerStore, alpha: str
) -> None:
    world.server.cloud.faults.add(service="identity", method="GET", path_regex="/projects/")
    cloud = OpenStackCloud(world.server.connect())
    app = create_app(web_settings(), moto_store, clock=Clock(T0 + timedelta(days=8)), cloud=cloud)
    with TestClient(app, base_url=BASE, follow_redirects=True) as c:
        page = c.get(f"/l/{link_token(VM, alpha)}")
    assert keystone_reads(world, alpha) >= 1  # asked, and it failed
    assert page.status_code == 200
    assert project_row(page.text) == f"<dd><code>{alpha}</code>"
    assert "It will be shelved on" in page.text


def test_a_page_without_a_cloud_shows_the_project_id(
    moto_store: DynamoTimerStore, alpha: str
) -> None:
    app = create_app(web_settings(), moto_store, clock=Clock(T0 + timedelta(days=8)))
    with TestClient(app, base_url=BASE, follow_redirects=True) as c:
        page = c.get(f"/l/{link_token(VM, alpha)}")
    assert project_row(page.text) == f"<dd><code>{alpha}</code>"


def test_a_signed_in_member_reads_the_name_of_their_sign_in_with_a_link_to_the_project(
    world: World, moto_store: DynamoTimerStore, alpha: str
) -> None:
    app = create_app(web_settings(keystone_url=world.auth_url), moto_store,
                     clock=Clock(T0 + timedelta(days=8)))  # fmt: skip
    with TestClient(app, base_url=BASE, follow_redirects=True) as c:
        sign_in(c, "ann")
        world.server.cloud.requests.clear()
        page = c.get(f"/resource/server/{VM}")
    assert f'<a href="/projects/{alpha}">alpha</a>' in project_row(page.text)
    assert keystone_reads(world, alpha) == 0
