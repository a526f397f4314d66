"""Poison and unresolvable recipients are isolated: a bad address is skipped and reported to
the operators while everyone else gets the mail, a deleted project's notices go to the
fallback contact and the operators, and the notice is acknowledged (RabbitMQ, a real SMTP
server, the simulated Keystone)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import kombu
import pytest

from reclaim.bus.settings import BusSettings
from reclaim.mailer import (
    DirectoryAddresses,
    KeystoneDirectory,
    Mailer,
    MailLedger,
    Renderer,
    SmtpSender,
)
from reclaim.mailer.addresses import BadAddress, check_address
from reclaim.mailer.listener import MailerService
from reclaim.mailer.preflight import DeliveryStamp
from reclaim.notices import NoticeMessage
from reclaim.settings import MailerSettings
from reclaim.store import DynamoTimerStore
from reclaim.sweeper import OsloNotices
from reclaim_sim import SimServer
from tests.notices.conftest import START, MailClock, Smtp, _n, free_port

pytestmark = pytest.mark.rabbitmq

OPS = "ops@cloud.example.org"
HELP = "help@cloud.example.org"


def mailer_for(keystone: SimServer, table: DynamoTimerStore, settings: MailerSettings) -> Mailer:
    addresses = DirectoryAddresses(
        KeystoneDirectory(keystone.connect()),
        fallback=settings.fallback_contact,
        operators=settings.operators,
    )
    return Mailer(
        settings, addresses, SmtpSender(settings), MailLedger(table), Renderer(), clock=MailClock()
    )


@pytest.fixture
def service(
    keystone: SimServer, table: DynamoTimerStore, bus_url: str, mailer_settings: MailerSettings
) -> Iterator[MailerService]:
    core = mailer_for(keystone, table, mailer_settings)
    running = MailerService(mailer_settings, core, BusSettings(transport_url=bus_url)).start()
    yield running
    running.stop()


def project_with(keystone: SimServer, emails: list[str]) -> str:
    """A project whose members have ``emails`` (one user each)."""
    n = next(_n)
    idn = keystone.cloud.identity
    pid = idn.create_project(f"poison-{n}").id
    for i, address in enumerate(emails):
        user = idn.create_user(f"poison-{n}-{i}", email=address)
        idn.grant(user.id, pid, "member")
    return pid


def cleanup_notice(pid: str) -> NoticeMessage:
    return NoticeMessage(
        kind="cleanup_upcoming", resource_type="project", resource_id=pid, project_id=pid,
        action="cleanup", due_at=START + timedelta(days=30), dedupe_key=f"project|{pid}|c",
    )  # fmt: skip


def publish(bus_url: str, *notices: NoticeMessage) -> None:
    out = OsloNotices(BusSettings(transport_url=bus_url))
    for n in notices:
        out.publish(n)
    out.close()


def settle(smtp: Smtp, count: int) -> list[tuple[str, str]]:
    """Wait for ``count`` mails, then a little longer to see that no more come."""
    smtp.box.wait(count)
    time.sleep(1.5)
    return smtp.box.received()


def left_in_queue(bus_url: str, queue: str) -> int:
    """Messages in ``queue`` (ready, and unacknowledged ones once the consumer is gone)."""
    url = bus_url.replace("rabbit://", "amqp://")
    with kombu.Connection(url) as conn:
        _, waiting, _ = conn.channel().queue_declare(queue, passive=True)
    return int(waiting)


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("a@example.org, b@evil.example", "@-sign"),
        ("carol@example.org\r\nBcc: eve@evil.example", "line feed"),
        ("Carol <carol@example.org>", "display name"),
        ("no-at-sign", "@-sign"),
        ("", "empty|not valid|@-sign"),
    ],
)
def test_an_address_that_is_not_one_addr_spec_is_refused(address: str, why: str) -> None:
    with pytest.raises(BadAddress, match=why):
        check_address(address)


def test_addresses_are_sent_in_ascii_where_they_can_be() -> None:
    assert check_address("Ann@Example.ORG").address == "Ann@example.org"
    idn = check_address("ann@bücher.example")
    assert (idn.address, idn.smtputf8) == ("ann@xn--bcher-kva.example", False)
    assert check_address("josé@example.org").smtputf8


def test_poison_addresses_are_skipped_and_reported_and_the_others_mailed(
    keystone: SimServer, smtp: Smtp, bus_url: str, service: MailerService,
    mailer_settings: MailerSettings,
) -> None:  # fmt: skip
    n = next(_n)
    good = [f"good{n}@example.org", f"ann{n}@bücher.example"]
    poison = [
        f"a{n}@example.org, b{n}@evil.example",
        f"carol{n}@example.org\r\nBcc: eve{n}@evil.example",
        f"josé{n}@example.org",  # needs SMTPUTF8, which this server does not offer
    ]
    pid = project_with(keystone, [poison[0], good[0], poison[1], poison[2], good[1]])
    notice = cleanup_notice(pid)
    publish(bus_url, notice)

    got = settle(smtp, 3)
    name = keystone.cloud.identity.projects[pid].name  # mails name the project
    subject = f"[reclaim] Project {name}: all resources will be deleted on 2026-03-31"
    alert = f"[reclaim] ALERT: a cleanup_upcoming mail reached not everyone (project {name})"
    assert sorted(got) == sorted(
        [(good[0], subject), (f"ann{n}@xn--bcher-kva.example", subject), (OPS, alert)]
    )
    (report,) = [m for m in smtp.box.mails if m["To"].addresses[0].addr_spec == OPS]
    text = report.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert max(len(line) for line in text.splitlines()) <= 72
    text = " ".join(text.split())  # unwrapped
    assert notice.notice_id in text
    for address in poison:
        assert repr(address) in text
    assert "needs SMTPUTF8" in text and "line feed" in text and "invalid characters" in text
    # no stray recipient: nothing went to the addresses smuggled in
    assert not any("evil" in to for to, _ in got)
    service.stop()
    assert left_in_queue(bus_url, mailer_settings.pool) == 0


def test_an_internationalised_address_is_mailed_where_the_server_offers_smtputf8(
    keystone: SimServer, table: DynamoTimerStore, mailer_settings: MailerSettings
) -> None:
    server = Smtp(free_port(), smtputf8=True)
    server.start()
    try:
        settings = mailer_settings.model_copy(update={"smtp_port": server.port})
        n = next(_n)
        pid = project_with(keystone, [f"josé{n}@example.org"])
        deliveries = mailer_for(keystone, table, settings).handle(cleanup_notice(pid).payload())
        assert [(d.address, d.result) for d in deliveries] == [(f"josé{n}@example.org", "sent")]
        server.box.wait(1)
        assert [to for to, _ in server.box.received()] == [f"josé{n}@example.org"]
    finally:
        server.stop()


def test_a_deleted_projects_notice_goes_to_the_fallback_contact_and_operators_once(
    keystone: SimServer, smtp: Smtp, bus_url: str, service: MailerService,
    mailer_settings: MailerSettings, table: DynamoTimerStore,
) -> None:  # fmt: skip
    """Keystone answers 404 to the role assignments of a deleted project: the notice is
    mailed to the fallback contact and the operators and acknowledged, not requeued."""
    n = next(_n)
    pid = project_with(keystone, [f"gone{n}@example.org"])
    keystone.cloud.identity.delete_project(pid)
    publish(bus_url, cleanup_notice(pid))

    got = settle(smtp, 2)
    subject = f"[reclaim] Project {pid}: all resources will be deleted on 2026-03-31"
    assert sorted(got) == sorted([(HELP, subject), (OPS, subject)])
    # the store now says a mail was delivered: run and sweep no longer warn at start
    assert DeliveryStamp.beside(MailLedger(table)).last() is not None
    service.stop()
    assert left_in_queue(bus_url, mailer_settings.pool) == 0


def test_a_notice_without_any_recipient_is_reported_not_dropped_silently(
    keystone: SimServer, table: DynamoTimerStore, mailer_settings: MailerSettings,
    smtp: Smtp, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    settings = mailer_settings.model_copy(update={"fallback_contact": "", "operators": ()})
    pid = project_with(keystone, [])
    assert mailer_for(keystone, table, settings).handle(cleanup_notice(pid).payload()) == []
    (line,) = [r for r in caplog.records if "notice_undeliverable" in r.getMessage()]
    assert line.levelname == "ERROR" and "no fallback contact and no operators" in line.message
