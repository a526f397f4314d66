"""The daily digest with real parts: RabbitMQ, an SMTP server, the simulated Keystone, dynalite."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reclaim.bus.settings import BusSettings
from reclaim.mailer import (
    DigestBook,
    DirectoryAddresses,
    KeystoneDirectory,
    Mailer,
    MailLedger,
    Renderer,
    Retry,
    SmtpSender,
)
from reclaim.mailer.digest import slot
from reclaim.mailer.listener import MailerService
from reclaim.notices import NoticeMessage
from reclaim.settings import MailerSettings
from reclaim.store import DynamoTimerStore
from reclaim.sweeper import OsloNotices
from reclaim_sim import SimServer
from tests.notices.conftest import People, Smtp
from tests.notices.test_mailer import notice_for, settle

DAY = datetime(2026, 3, 2, tzinfo=UTC)
ALERT = "[reclaim] ALERT: sweep stopped, circuit breaker open"
DIGEST = "[reclaim] 3 notices about your resources on the research cloud"


class Clock:
    """The mailer's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def digest_settings(mailer_settings: MailerSettings) -> MailerSettings:
    return mailer_settings.model_copy(update={"digest": True, "digest_hour": 8})


def make_mailer(
    keystone: SimServer, table: DynamoTimerStore, settings: MailerSettings, clock: Clock
) -> Mailer:
    addresses = DirectoryAddresses(
        KeystoneDirectory(keystone.connect()),
        fallback=settings.fallback_contact,
        operators=settings.operators,
    )
    return Mailer(
        settings, addresses, SmtpSender(settings), MailLedger(table), Renderer(), clock=clock
    )


def kept(table: DynamoTimerStore, address: str) -> list[str]:
    return sorted(k.notice.resource_id for k in DigestBook(table.client, table.table).kept(
        address, datetime.max.replace(tzinfo=UTC)))  # fmt: skip


def wait_kept(table: DynamoTimerStore, address: str, count: int) -> list[str]:
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if len(found := kept(table, address)) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{count} kept notices expected, got {kept(table, address)}")


def alert() -> NoticeMessage:
    return NoticeMessage(kind="sweep_cap_reached", resource_type="sweep", resource_id="global",
                         detail={"reason": "cap of 1 reached"})  # fmt: skip


def test_the_slot_is_the_last_digest_hour_reached() -> None:
    assert slot(DAY + timedelta(hours=8), 8) == DAY + timedelta(hours=8)
    assert slot(DAY + timedelta(hours=23), 8) == DAY + timedelta(hours=8)
    assert slot(DAY + timedelta(hours=7, minutes=59), 8) == DAY - timedelta(hours=16)


@pytest.fixture
def services() -> Iterator[list[MailerService]]:
    started: list[MailerService] = []
    yield started
    for s in started:
        s.stop()


@pytest.mark.rabbitmq
def test_a_persons_notices_arrive_as_one_digest_at_the_hour_once_across_a_restart(
    keystone: SimServer, people: People, table: DynamoTimerStore, smtp: Smtp, bus_url: str,
    digest_settings: MailerSettings, services: list[MailerService],
) -> None:  # fmt: skip
    clock = Clock(DAY + timedelta(hours=7))
    mailer = make_mailer(keystone, table, digest_settings, clock)
    services.append(
        MailerService(
            digest_settings, mailer, BusSettings(transport_url=bus_url), digest_check=0.1
        ).start()
    )
    notices = OsloNotices(BusSettings(transport_url=bus_url))
    for n in (1, 2, 3):
        notices.publish(notice_for(people, n))
    notices.publish(alert())

    # the alert goes out at once; the person's notices wait for the digest hour
    assert wait_kept(table, people.owner_email, 3) == ["server-1", "server-2", "server-3"]
    assert settle(smtp, 1) == [("ops@cloud.example.org", ALERT)]

    clock.now = DAY + timedelta(hours=8)
    got = settle(smtp, 2)
    assert got == [("ops@cloud.example.org", ALERT), (people.owner_email, DIGEST)]
    text = smtp.box.mails[1].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    for n in (1, 2, 3):
        assert f'server "vm-{n}"' in text
    assert text.index('"vm-1"') < text.index('"vm-2"') < text.index('"vm-3"'), "date order"
    assert kept(table, people.owner_email) == []

    # a restart later that day, and a notice redelivered meanwhile: nothing is mailed again
    services.pop().stop()
    notices.publish(notice_for(people, 2))
    notices.close()
    clock.now = DAY + timedelta(hours=9)
    services.append(
        MailerService(
            digest_settings, make_mailer(keystone, table, digest_settings, clock),
            BusSettings(transport_url=bus_url),
            digest_check=0.1,
        ).start()
    )  # fmt: skip
    clock.now = DAY + timedelta(days=1, hours=8)
    assert settle(smtp, 2) == got
    assert kept(table, people.owner_email) == []


def test_a_crash_after_the_digest_went_out_neither_repeats_nor_loses_it(
    keystone: SimServer, people: People, table: DynamoTimerStore, smtp: Smtp,
    digest_settings: MailerSettings, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    clock = Clock(DAY + timedelta(hours=20))
    first = make_mailer(keystone, table, digest_settings, clock)
    for n in (1, 2, 3):
        assert [d.result for d in first.handle(notice_for(people, n).payload())] == ["kept"]
    assert first.send_digests() == [], "kept after today's hour: tomorrow's digest"

    def crash(*args: Any) -> None:
        raise RuntimeError("killed before the kept notices were cleared")

    monkeypatch.setattr(DigestBook, "clear", crash)
    clock.now = DAY + timedelta(days=1, hours=8, minutes=5)
    with pytest.raises(RuntimeError):
        first.send_digests()
    assert smtp.box.received() == [(people.owner_email, DIGEST)]
    monkeypatch.undo()

    restarted = make_mailer(keystone, table, digest_settings, clock)
    (again,) = restarted.send_digests()
    assert again.result == "already-sent"
    assert kept(table, people.owner_email) == []
    # the notices, redelivered after their digest, are not kept for another one
    assert [d.result for d in restarted.handle(notice_for(people, 1).payload())] == ["already-sent"]
    clock.now = DAY + timedelta(days=2, hours=8)
    assert restarted.send_digests() == []
    assert smtp.box.received() == [(people.owner_email, DIGEST)]


def test_an_smtp_outage_at_the_hour_delays_the_digest(
    keystone: SimServer, people: People, table: DynamoTimerStore, smtp: Smtp,
    digest_settings: MailerSettings,
) -> None:  # fmt: skip
    clock = Clock(DAY + timedelta(hours=6))
    mailer = make_mailer(keystone, table, digest_settings, clock)
    for n in (1, 2, 3):
        mailer.handle(notice_for(people, n).payload())
    smtp.stop()
    clock.now = DAY + timedelta(hours=8)
    with pytest.raises(Retry):
        mailer.send_digests()
    smtp.start()
    (sent,) = mailer.send_digests()
    assert sent.result == "sent" and sent.subject == DIGEST.removeprefix("[reclaim] ")
    assert smtp.box.received() == [(people.owner_email, DIGEST)]
