"""A corrected allocation end restates the cleanup (earlier or later) and tells each person
once that the date changed: the store, the sweeper, the mailer and a real SMTP server."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from reclaim import routes
from reclaim.mailer import (
    DirectoryAddresses,
    KeystoneDirectory,
    Mailer,
    MailLedger,
    Renderer,
    SmtpSender,
)
from reclaim.notices import NoticeMessage
from reclaim.settings import MailerSettings, PolicySettings, SweepSettings
from reclaim.store import DynamoTimerStore
from reclaim.sweeper import OpenStackCloud, Sweeper
from reclaim_sim import SimServer
from tests.notices.conftest import START, People, Smtp
from tests.support.builders import event

POLICY = PolicySettings()


class MailNow:
    """A notice port that hands each notice to the mailer at once (no bus)."""

    def __init__(self, mailer: Mailer) -> None:
        self.mailer = mailer

    def publish(self, message: NoticeMessage) -> None:
        self.mailer.handle(message.payload())


def ended(store: DynamoTimerStore, sim: SimServer, pid: str, end: datetime, at: datetime) -> None:
    """``allocation.ended`` for ``pid`` at ``at`` saying it ended at ``end``; Keystone's
    record says the same."""
    sim.cloud.identity.update_project(pid, allocation_end=end.date().isoformat())
    n = event("allocation.ended", {"project_id": pid, "end_date": end.isoformat()}, at)
    store.apply(routes.decide(n, POLICY))


def kinds_by_person(smtp: Smtp, since: int) -> Counter[tuple[str, str]]:
    mails = smtp.box.mails[since:]
    return Counter((m["To"].addresses[0].addr_spec, str(m["X-Reclaim-Kind"])) for m in mails)


def test_a_corrected_end_date_restates_the_cleanup_with_one_change_mail_per_person(
    keystone: SimServer, people: People, table: DynamoTimerStore, smtp: Smtp,
    mailer_settings: MailerSettings,
) -> None:  # fmt: skip
    addresses = DirectoryAddresses(
        KeystoneDirectory(keystone.connect()), fallback=mailer_settings.fallback_contact,
        operators=mailer_settings.operators,
    )  # fmt: skip
    mailer = Mailer(
        mailer_settings, addresses, SmtpSender(mailer_settings), MailLedger(table), Renderer()
    )
    sweeper = Sweeper(
        table, OpenStackCloud(keystone.connect()), MailNow(mailer), POLICY, "sweeper-fix",
        SweepSettings(),
    )  # fmt: skip
    pid = people.project_id
    everyone = (people.owner_email, people.member_email)

    def cleanup_due() -> datetime | None:
        (t,) = [t for t in table.timers_for("project", pid) if t.rule == "project-cleanup"]
        return t.due_at

    first_end = START - timedelta(days=1)
    ended(table, keystone, pid, first_end, START)
    sweeper.sweep(START + timedelta(hours=1))
    told = kinds_by_person(smtp, 0)
    assert told == Counter({(to, "allocation_ended"): 1 for to in everyone})
    assert cleanup_due() == first_end + POLICY.cleanup_after

    # a correction: the allocation ended a month earlier
    earlier = START - timedelta(days=31)
    ended(table, keystone, pid, earlier, START + timedelta(days=5))
    assert cleanup_due() == earlier + POLICY.cleanup_after
    mark = len(smtp.box.mails)
    for hours in (1, 2):
        sweeper.sweep(START + timedelta(days=5, hours=hours))
    assert kinds_by_person(smtp, mark) == Counter({(to, "date_changed"): 1 for to in everyone})
    text = smtp.box.mails[-1].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "has changed" in text and f"{(earlier + POLICY.cleanup_after):%B %Y}" in text

    # another one, later again; the first correction delivered late changes nothing
    later = START - timedelta(days=3)
    ended(table, keystone, pid, later, START + timedelta(days=9))
    table.apply(
        routes.decide(
            event("allocation.ended", {"project_id": pid, "end_date": earlier.isoformat()},
                  START + timedelta(days=5)),
            POLICY,
        )
    )  # fmt: skip
    assert cleanup_due() == later + POLICY.cleanup_after
    mark = len(smtp.box.mails)
    for hours in (1, 2):
        sweeper.sweep(START + timedelta(days=9, hours=hours))
    assert kinds_by_person(smtp, mark) == Counter({(to, "date_changed"): 1 for to in everyone})

    # the schedule goes on from the new date: the month-ahead warning, once each
    mark = len(smtp.box.mails)
    sweeper.sweep(later + POLICY.cleanup_after - timedelta(days=30))
    assert kinds_by_person(smtp, mark) == Counter({(to, "cleanup_upcoming"): 1 for to in everyone})
