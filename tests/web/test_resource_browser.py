"""The resource page in a real browser (Debian's chromium through selenium, 375 px wide):
a person opens the link in their mail, reads what will happen and why, keeps the server,
and the new date shows on the page, in ``reclaim plan`` and in the next notice."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from reclaim.cli import app as cli
from reclaim.mailer.addresses import Person
from reclaim.mailer.render import Renderer
from reclaim.policy.servers import SHELVE
from reclaim.settings import PolicySettings, SweepSettings
from reclaim.store import DynamoTimerStore
from reclaim.sweeper import OpenStackCloud, RecordingNotices, Sweeper
from reclaim.sweeper.notices import owner_notice
from reclaim.web.app import create_app
from reclaim.web.links import mail_links
from reclaim_sim import Cloud, SimClock, SimServer
from tests.notices.test_browser import browser, overflow, pytestmark
from tests.support.waiting import wait_for
from tests.sweeper.conftest import deliver_on_time
from tests.web.conftest import Clock, web_settings
from tests.web.keystone_world import served
from tests.web.test_project_browser import capture

__all__ = ["browser", "pytestmark"]

#: Where the screenshot for docs/web/ goes when asked for (RECLAIM_WEB_SCREENSHOTS=docs/web).
SHOTS = os.environ.get("RECLAIM_WEB_SCREENSHOTS", "")
NOW = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
STOPPED = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def sim_server() -> Iterator[SimServer]:
    cloud = Cloud(clock=SimClock(NOW))
    with SimServer(cloud) as server:
        yield server
    cloud.close()


def text_of(driver: Any) -> str:
    """The page's main text as read, in one line ("" while a page loads: no stale element)."""
    text = driver.execute_script(
        "const m = document.querySelector('main'); return m ? m.innerText : ''"
    )
    return " ".join(str(text or "").split())


def test_a_person_keeps_a_server_from_the_link_in_their_mail(
    browser: Any, sim_server: SimServer, moto_store: DynamoTimerStore, tmp_path: Path
) -> None:
    cloud = sim_server.cloud
    project = cloud.identity.create_project("climate").id
    user = cloud.identity.create_user("ada", email="ada@example.org").id
    cloud.identity.grant(user, project, "member")
    image = cloud.image.create_image(owner=project, name="img", visibility="private",
                                     status="active").id  # fmt: skip
    server = cloud.compute.create_server(project_id=project, user_id=user, name="ocean-model",
                                         image_id=image, state="stopped", updated_at=STOPPED).id  # fmt: skip
    policy = PolicySettings()
    moto_store.apply(
        SHELVE.schedule(server, since=STOPPED, delay=policy.shelve_after, event_time=STOPPED,
                        notices=SHELVE.notices_before(policy.shelve_notices), project_id=project,
                        user_id=user, detail={"name": "ocean-model", "state": "stopped"})
    )  # fmt: skip
    deliver_on_time(moto_store, "server", server, SHELVE.id, before=NOW)
    (timer,) = moto_store.timers_for("server", server)
    ada = Person("ada@example.org", "Ada", user)

    settings = web_settings()
    app = create_app(settings, moto_store, clock=Clock(NOW),
                     cloud=OpenStackCloud(sim_server.connect()))  # fmt: skip
    with served(app) as url:
        links = mail_links(web_settings(base_url=url).web)
        renderer = Renderer(policy=policy, links=links)
        sent = next(n for n in timer.notices if n.sent_at is not None)
        mail = renderer.render(owner_notice(timer, sent), ada)
        link = re.search(rf"{re.escape(url)}/l/\S+", mail.text)
        assert link, mail.text

        browser.delete_all_cookies()
        browser.get(link.group(0))
        wait_for(lambda: browser.current_url == f"{url}/resource/server/{server}")
        page = text_of(browser)
        assert "Server “ocean-model”" in page
        assert f"Project climate ({project})" in page  # its name, from Keystone
        assert "It will be shelved on Sunday 15 March 2026 at 09:00 UTC" in page
        assert "This server has been stopped since 2026-03-01." in page
        assert "shelved after 2 weeks in said state" in page  # the clause, configured period
        assert "2026-03-08: a stopped or suspended server will be shelved" in page  # notice sent
        assert overflow(browser) <= 0  # nothing scrolls sideways on a phone

        browser.find_element("id", "reason-1").send_keys("the ensemble run ends on 25 March")
        browser.find_element("css selector", "form[action$='/keep'] button").click()
        wait_for(lambda: "Postponed by 2 weeks" in text_of(browser))
        page = text_of(browser)
        assert "It will now be shelved on Sunday 29 March 2026 at 09:00 UTC" in page
        assert "It will be shelved on Sunday 29 March 2026 at 09:00 UTC" in page
        assert "Keep it 2 weeks longer" not in page  # once per condition
        assert (
            "2026-03-09: postponed by 2 weeks at the request of mail link to ada@example.org"
            in page
        )
        assert overflow(browser) <= 0
        capture(browser, Path(SHOTS or tmp_path) / "resource.png")

    # the forecast says the new date
    plan = CliRunner().invoke(cli, ["plan", "--store", f"memory://{moto_store.table}",
                                    "--now", NOW.isoformat(), "-f", "value", "-c", "when", "-c", "what"])  # fmt: skip
    assert plan.exit_code == 0, plan.output
    assert "2026-03-29T09:00:00Z shelve" in plan.output
    assert "2026-03-15T09:00:00Z shelve" not in plan.output
    audit = CliRunner().invoke(
        cli, ["audit", "server", server, "--store", f"memory://{moto_store.table}"]
    )
    assert "extend" in audit.output and "granted" in audit.output

    # the next sweep mails the new date once, then the last notice states it too
    notices = RecordingNotices()
    sweeper = Sweeper(moto_store, OpenStackCloud(sim_server.connect()), notices, policy, "sweeper-web",
                      SweepSettings(min_notice_lead=timedelta(0)))  # fmt: skip
    sweeper.sweep(NOW + timedelta(minutes=1))
    assert notices.kinds() == ["date_changed"]
    changed = Renderer(policy=policy, links=links).render(notices.messages[0], ada).text
    assert "It is now Sunday 29 March 2026 at 09:00 UTC" in " ".join(changed.split())
    sweeper.sweep(datetime(2026, 3, 28, 9, 0, tzinfo=UTC))
    assert notices.kinds() == ["date_changed", "shelve_upcoming"]
    last = " ".join(Renderer(policy=policy).render(notices.messages[1], ada).text.split())
    assert "It will be shelved on Sunday 29 March 2026 at 09:00 UTC, in 1 day" in last
