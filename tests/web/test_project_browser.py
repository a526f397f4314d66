"""The project page in a real browser (Debian's chromium through selenium, 375 px wide):
a member signs in with Keystone, sees only their own projects and sorts the actions."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from reclaim.policy.servers import DELETE_SHELVED
from reclaim.settings import Settings
from reclaim.store import DynamoTimerStore
from reclaim.web.app import create_app
from tests.notices.test_browser import browser, overflow, pytestmark
from tests.support.waiting import wait_for
from tests.web.conftest import T0, USER, Clock, stop_server, web_settings
from tests.web.keystone_world import PASSWORDS, World, served, world

__all__ = ["browser", "pytestmark", "world"]

#: Where the screenshots for docs/web/ go when asked for (RECLAIM_WEB_SCREENSHOTS=docs/web).
SHOTS = os.environ.get("RECLAIM_WEB_SCREENSHOTS", "")


def shelve_server(store: DynamoTimerStore, server: str, project: str, name: str) -> None:
    """The store as after Nova said ``server`` was shelved at T0: a pending deletion."""
    policy = Settings().policy
    store.apply(
        DELETE_SHELVED.schedule(
            server, since=T0 - timedelta(days=150), delay=policy.delete_shelved_after,
            event_time=T0 - timedelta(days=150),
            notices=DELETE_SHELVED.notices_before(policy.delete_notices),
            project_id=project, user_id=USER, detail={"name": name, "state": "shelved"},
        )
    )  # fmt: skip


def capture(driver: Any, out: Path) -> None:
    """A PNG of the whole page as shown."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight")) + 20
    width = int(driver.execute_script("return window.innerWidth"))
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(base64.b64decode(shot["data"]))


@pytest.fixture
def site(world: World, moto_store: DynamoTimerStore) -> Iterator[str]:
    alpha, gamma = world.projects["alpha"], world.projects["gamma"]
    stop_server(moto_store, "a0000000-0000-4000-8000-000000000001", alpha, name="genome-assembly")
    stop_server(moto_store, "a0000000-0000-4000-8000-000000000002", alpha,
                at=T0 + timedelta(days=3), name="web-frontend")  # fmt: skip
    shelve_server(moto_store, "a0000000-0000-4000-8000-000000000003", alpha, "old-notebook")
    stop_server(moto_store, "c0000000-0000-4000-8000-000000000009", gamma, name="gamma-secret-work")
    app = create_app(
        web_settings(keystone_url=world.auth_url),
        moto_store,
        clock=Clock(T0 + timedelta(days=8)),
    )
    with served(app) as url:
        yield url


def _sign_in(driver: Any, user: str) -> None:
    driver.find_element("id", "user_name").send_keys(user)
    driver.find_element("id", "password").send_keys(PASSWORDS[user])
    driver.find_element("css selector", "form button[type=submit]").click()


def _follow(driver: Any, link: str, query: str) -> None:
    driver.find_element("link text", link).click()
    wait_for(lambda: driver.current_url.endswith(query))


def _resources(driver: Any) -> list[str]:
    cells = driver.find_elements("css selector", "table.actions tbody td[data-label=Resource] a")
    return [c.text for c in cells]


def test_a_member_signs_in_in_a_browser_and_sees_only_their_projects(
    browser: Any, site: str, world: World, tmp_path: Path
) -> None:
    alpha = world.projects["alpha"]
    browser.delete_all_cookies()
    browser.get(f"{site}/projects/{alpha}")
    assert browser.current_url.startswith(f"{site}/signin")
    _sign_in(browser, "ann")
    wait_for(lambda: browser.current_url == f"{site}/projects/{alpha}")
    text = browser.find_element("tag name", "body").text
    assert "gamma-secret-work" not in text
    # by due date first: the shelve of the first stopped server, then the second, then the
    # deletion of the shelved one (due much later)
    assert _resources(browser) == ["genome-assembly", "web-frontend", "old-notebook"]
    assert overflow(browser) <= 0
    _follow(browser, "Resource", "?sort=resource&order=asc")
    assert _resources(browser) == ["genome-assembly", "old-notebook", "web-frontend"]
    _follow(browser, "Resource ▲", "?sort=resource&order=desc")
    assert _resources(browser) == ["web-frontend", "old-notebook", "genome-assembly"]
    _follow(browser, "What will happen", "?sort=action&order=asc")
    assert _resources(browser)[0] == "old-notebook"  # "deleted" before "shelved"
    _follow(browser, "When", "?sort=due&order=asc")
    capture(browser, Path(SHOTS or tmp_path) / "project.png")

    browser.get(f"{site}/projects")
    listed = [a.text for a in browser.find_elements("css selector", "ul.cards a")]
    assert listed == ["alpha", "beta"]
    browser.get(f"{site}/projects/{world.projects['gamma']}")
    assert "not one of yours" in browser.find_element("tag name", "body").text
    assert "gamma-secret-work" not in browser.page_source
    browser.get(f"{site}/projects")
    browser.find_element("css selector", "nav.account button").click()
    wait_for(lambda: browser.current_url == f"{site}/signin")
    browser.get(f"{site}/projects/{alpha}")
    assert browser.current_url.startswith(f"{site}/signin")
