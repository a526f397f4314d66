"""The operators' page in headless Chromium: an operator signs in, reads what waits for
them and resets the breaker with a reason; docs/web/operators.png."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from reclaim.deadletters import DeadLetterStore, dead_letter
from reclaim.store import DynamoTimerStore
from reclaim.sweeper import OpenStackCloud, RecordingNotices
from reclaim.sweeper.breaker import Breaker
from reclaim.web.app import create_app
from reclaim.web.requests import ask_exemption, keep
from tests.notices.test_browser import browser, overflow, pytestmark
from tests.support.waiting import wait_for
from tests.web.conftest import T0, Clock, fail_for_good, stop_server, web_settings
from tests.web.keystone_world import PASSWORDS, World, served, world
from tests.web.test_project_browser import SHOTS, capture

__all__ = ["browser", "pytestmark", "world"]

NOW = T0 + timedelta(days=8)


@pytest.fixture
def site(world: World, moto_store: DynamoTimerStore) -> Iterator[str]:
    alpha, gamma = world.projects["alpha"], world.projects["gamma"]
    notices = RecordingNotices()
    stop_server(moto_store, "d0000000-0000-4000-8000-000000000001", alpha, name="genome-assembly")
    stop_server(moto_store, "d0000000-0000-4000-8000-000000000002", gamma,
                at=T0 + timedelta(days=2), name="telescope-control")  # fmt: skip
    stop_server(moto_store, "d0000000-0000-4000-8000-000000000003", alpha,
                at=T0 + timedelta(days=1), name="web-frontend")  # fmt: skip
    (t1,) = moto_store.timers_for("server", "d0000000-0000-4000-8000-000000000002")
    ask_exemption(moto_store, notices, t1, "bob (4292ea) signed in with Keystone",
                  "It drives the telescope; it must stay stopped between nights.", NOW)  # fmt: skip
    (t2,) = moto_store.timers_for("server", "d0000000-0000-4000-8000-000000000003")
    keep(moto_store, web_settings().model_copy(), notices, t2, "ann (8d700b) signed in with Keystone",
         "Conference demo on the 20th.", NOW)  # fmt: skip
    stop_server(moto_store, "d0000000-0000-4000-8000-000000000004", alpha,
                at=T0 - timedelta(days=30), name="old-build-box")  # fmt: skip
    fail_for_good(moto_store, "d0000000-0000-4000-8000-000000000004", NOW - timedelta(hours=3),
                  "action failed 5 times: shelve server d0000000-0000-4000-8000-000000000004: "
                  "409 Conflict: Cannot 'shelve' instance while it is in task_state "
                  "image_uploading")  # fmt: skip
    Breaker(moto_store).open(
        NOW - timedelta(hours=2), "cap reached: 50 destructive actions in one sweep"
    )
    DeadLetterStore.beside(moto_store).record(
        [dead_letter(b'{"oslo.message": "{truncated', stage="decode", reason="body is not JSON",
                     routing_key="notifications.info", now=NOW - timedelta(hours=5)),
         dead_letter({"event_type": "compute.instance.shelve_offload.end", "priority": "INFO",
                      "payload": {"nova_object.data": {"uuid": "d0000000"}}}, stage="parse",
                     reason="payload.nova_object.data.state: field required",
                     now=NOW - timedelta(hours=1))]
    )  # fmt: skip
    app = create_app(
        web_settings(keystone_url=world.auth_url), moto_store, clock=Clock(NOW),
        cloud=OpenStackCloud(world.server.connect()),
    )  # fmt: skip
    with served(app) as url:
        yield url


def test_an_operator_reads_the_page_and_resets_the_breaker(
    browser: Any, site: str, world: World, moto_store: DynamoTimerStore, tmp_path: Path
) -> None:
    browser.delete_all_cookies()
    browser.get(f"{site}/operators")
    browser.find_element("id", "user_name").send_keys("olga")
    browser.find_element("id", "password").send_keys(PASSWORDS["olga"])
    browser.find_element("css selector", "form button[type=submit]").click()
    wait_for(lambda: browser.current_url == f"{site}/operators")
    text = browser.find_element("tag name", "body").text
    assert "Open since" in text
    assert "It drives the telescope" in text
    assert browser.find_elements("css selector", "button[value=approve]")
    assert "Conference demo on the 20th." in text  # postponed, with who asked and why
    letters = browser.find_element("css selector", "#letters ~ table").text
    assert letters.index("shelve_offload") < letters.index("body is not JSON")  # latest first
    assert "reclaim deadletters replay " in letters
    failed = browser.find_element("css selector", "#failed ~ table").text
    assert "old-build-box" in failed and "task_state image_uploading" in failed
    assert f"reclaim reconcile --project {world.projects['alpha']}" in failed
    assert overflow(browser) <= 0
    capture(browser, Path(SHOTS or tmp_path) / "operators.png")
    browser.find_element("id", "breaker-reason").send_keys(
        "The cap was the ended project's cleanup."
    )
    browser.find_element("css selector", "#breaker ~ form button").click()
    wait_for(lambda: "The breaker is closed" in browser.page_source)
    state = Breaker(moto_store).status()
    assert not state.open and state.reset_by.startswith("olga (")
    assert state.reset_reason == "The cap was the ended project's cleanup."
