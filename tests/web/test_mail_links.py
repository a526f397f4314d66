"""The links in notice mails: every mail to a person about a resource has one, for that
person, and it opens that resource's page."""

from __future__ import annotations

import re
from datetime import timedelta

from starlette.testclient import TestClient

from reclaim.mailer.addresses import Person
from reclaim.mailer.render import Renderer
from reclaim.settings import PolicySettings
from reclaim.store import DynamoTimerStore
from reclaim.sweeper.notices import operator_alert, owner_notice
from reclaim.web.links import mail_links, verify
from tests.web.conftest import KEY, PROJECT, READER, SERVER, T0, Clock, web_settings

PERSON = Person(READER, "Ada Lovelace", "u-1")


def renderer() -> Renderer:
    return Renderer(policy=PolicySettings(), links=mail_links(web_settings().web))


def link_in(text: str) -> str:
    m = re.search(r"http://testserver/l/[A-Za-z0-9._-]+", text)
    assert m, text
    return m.group(0)


def test_a_notice_mail_links_to_the_resource_page_for_its_reader(
    client: TestClient, moto_store: DynamoTimerStore, clock: Clock
) -> None:
    timer = moto_store.timers_for("server", SERVER)[0]
    notice = owner_notice(timer, timer.notices[0])
    mail = renderer().render(notice, PERSON)
    link = link_in(mail.text)
    assert f'<a href="{link}">' in mail.html
    grant = verify(link.rsplit("/", 1)[1], KEY, clock.now)
    assert (grant.resource_type, grant.resource_id, grant.project_id) == ("server", SERVER, PROJECT)
    assert grant.recipient == READER
    assert grant.expires == T0 + timedelta(days=14 + 7)  # the due date plus web.link_grace
    page = client.get(link.removeprefix("http://testserver"))
    assert page.status_code == 200 and "analysis-vm" in page.text


def test_the_digest_links_each_resource() -> None:
    from reclaim.mailer.examples import digest_examples

    mail = renderer().render_digest(digest_examples(), PERSON)
    assert mail.text.count("http://testserver/l/") == len(digest_examples())
    assert mail.html.count('<a href="http://testserver/l/') == len(digest_examples())


def test_no_link_for_operators_nor_without_web_settings(
    app: object, moto_store: DynamoTimerStore
) -> None:
    timer = moto_store.timers_for("server", SERVER)[0]
    alert = operator_alert("action_failed", timer, "boom")
    assert "/l/" not in renderer().render(alert, PERSON).text
    plain = Renderer(policy=PolicySettings(), links=mail_links(web_settings(base_url="").web))
    assert "/l/" not in plain.render(owner_notice(timer, timer.notices[0]), PERSON).text
