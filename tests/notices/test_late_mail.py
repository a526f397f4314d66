"""A warning mailed after the date it announced says so, and the date it names is one the
sweeper honours: the mails as a reader gets them, rendered at the mailer's clock."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reclaim.mailer import DirectoryAddresses, KeystoneDirectory, Mailer, MailLedger, Renderer
from reclaim.mailer.examples import READER, examples
from reclaim.mailer.smtp import SmtpSender
from reclaim.notices import NoticeMessage
from reclaim.notices.context import first_warning_floor
from reclaim.settings import MailerSettings, PolicySettings
from reclaim.store import DynamoTimerStore
from reclaim.sweeper.notices import owner_notice
from reclaim.sweeper.rules import action_date, delivery_hold, notices_due
from reclaim.timers import Notice, Timer, mark_notice_sent
from reclaim_sim import SimServer
from tests.notices.conftest import People, Smtp

DAY = timedelta(days=1)
#: The shelve's date as first scheduled: Sunday 8 March 2026, 09:00 UTC.
DUE = datetime(2026, 3, 8, 9, tzinfo=UTC)
RENDERER = Renderer(policy=PolicySettings())


def shelve_timer(due: datetime = DUE) -> Timer:
    """A server's shelve, with warnings 7 days and 1 day before (the default policy)."""
    return Timer(
        resource_type="server", resource_id="s1", rule="shelve", action="shelve",
        project_id="p1", user_id="u1", due_at=due, detail={"name": "vm", "state": "stopped"},
        notice_spec=(("shelve_upcoming", 7 * DAY), ("shelve_upcoming", DAY)),
        notices=tuple(
            Notice(kind="shelve_upcoming", before=b, due_at=due - b) for b in (7 * DAY, DAY)
        ),
    )  # fmt: skip


def first_warning(timer: Timer, published: datetime) -> tuple[NoticeMessage, Timer]:
    """The sweeper's first warning of ``timer`` published at ``published`` (its date moved
    forward as the sweeper moves it when it runs late), and the timer once it is sent."""
    (notice, date), *_ = notices_due(timer, published)
    return owner_notice(timer, notice, date, published), mark_notice_sent(timer, notice, published)


def read(notice: NoticeMessage, now: datetime | None) -> tuple[str, str]:
    """The subject and the text (unwrapped) a reader gets of ``notice`` rendered at ``now``."""
    mail = RENDERER.render(notice, READER, now)
    return mail.subject, " ".join(mail.text.split())


def test_a_warning_reads_true_before_on_and_after_its_date() -> None:
    warning, _ = first_warning(shelve_timer(), DUE - 7 * DAY)
    assert warning.due_at == DUE

    subject, text = read(warning, DUE - 7 * DAY)
    assert subject == 'Your server "vm" will be shelved on 2026-03-08'
    assert "It will be shelved on Sunday 8 March 2026 at 09:00 UTC, in 7 days." in text
    assert "reaches you late" not in text and "start (or resume) it before then" in text

    # delivered 4 days late (the mailer was down): the count is from the day it is read
    _, text = read(warning, DUE - 3 * DAY)
    assert "It will be shelved on Sunday 8 March 2026 at 09:00 UTC, in 3 days." in text

    # the same morning, two hours before: the date, no count of zero days
    _, text = read(warning, DUE - timedelta(hours=2))
    assert "It will be shelved on Sunday 8 March 2026 at 09:00 UTC." in text

    for now, floor in ((DUE, "Sunday 15 March 2026"), (DUE + 2 * DAY, "Tuesday 17 March 2026")):
        subject, text = read(warning, now)
        assert subject == 'Your server "vm" was due to be shelved on 2026-03-08'
        assert "will be shelved on" not in text and "in 7 days" not in text
        assert (
            "This mail reaches you late: its shelving was due on Sunday 8 March 2026 at "
            "09:00 UTC, a date that has passed. It may be shelved already, or be shelved at "
            "the next check. But if this is the first warning about it that reached anyone, "
            f"it will not happen before {floor} at 09:00 UTC" in text
        )
        assert "start (or resume) it now: - openstack server start s1" in text
        assert "If it was shelved already, unshelve it to use it again: " in text


def test_the_date_a_late_mail_names_is_the_one_the_sweeper_honours() -> None:
    """DESIGN §6: the whole warning period from the first warning delivered."""
    # The sweeper ran late (its first warning 3 days after it was due): the notice carries
    # the moved date, the timer acts on that date, and the mail says it with its full lead.
    late_run = DUE - 4 * DAY
    warning, sent = first_warning(shelve_timer(), late_run)
    assert warning.due_at == late_run + 7 * DAY == action_date(sent)
    subject, text = read(warning, None)  # as of its publication
    assert subject == 'Your server "vm" will be shelved on 2026-03-11'
    assert "on Wednesday 11 March 2026 at 09:00 UTC, in 7 days." in text

    # Published on time, but the mailer was down: delivered 2 days after the date. If it is
    # the first warning delivered, the sweeper holds the shelve until its whole period ran
    # from the delivery, and the mail names that date.
    warning, sent = first_warning(shelve_timer(), DUE - 7 * DAY)
    delivered = DUE + 2 * DAY
    hold = delivery_hold(sent, delivered, delivered)
    assert hold is not None and hold.until == delivered + 7 * DAY
    assert first_warning_floor(warning, delivered) == hold.until
    assert (
        "it will not happen before Tuesday 17 March 2026 at 09:00 UTC"
        in read(warning, delivered)[1]
    )
    # ... and once the period ran out, nothing holds it: the mail said "may be shelved already"
    assert delivery_hold(sent, hold.until, delivered) is None


def test_the_one_day_reminder_names_no_date_later_than_the_sweepers() -> None:
    """A later, shorter warning delivered late: the date it states for a first delivery is
    never after the sweeper's hold (its own lead is shorter than the rule's period)."""
    timer = shelve_timer()
    _, sent = first_warning(timer, DUE - 7 * DAY)
    (reminder, date), *_ = notices_due(sent, DUE - DAY)
    notice = owner_notice(sent, reminder, date, DUE - DAY)
    delivered = DUE + DAY
    hold = delivery_hold(mark_notice_sent(sent, reminder, DUE - DAY), delivered, delivered)
    floor = first_warning_floor(notice, delivered)
    assert hold is not None and floor is not None and hold.until is not None
    assert delivered < floor <= hold.until


_LONG_DATE = re.compile(
    r"(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day \d{1,2} \w+ \d{4} at \d\d:\d\d UTC"
)
_WARNINGS = [
    n
    for n in examples()
    if n.kind
    in ("shelve_upcoming", "delete_upcoming", "cleanup_upcoming", "images_deletion_upcoming",
        "rule_removal_upcoming", "date_changed", "allocation_ended", "image_going_away")
]  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    index=st.integers(0, len(_WARNINGS) - 1),
    lead=st.timedeltas(min_value=timedelta(hours=1), max_value=200 * DAY),
    read_after=st.timedeltas(min_value=timedelta(0), max_value=400 * DAY),
)
def test_a_mail_never_states_a_past_date_as_ahead(
    index: int, lead: timedelta, read_after: timedelta
) -> None:
    """Whenever a warning is read (from its publication on), a date it says is ahead is
    ahead, its count of days is the true one, and a date that has passed is said to have."""
    example = _WARNINGS[index]
    assert example.due_at is not None
    published = example.due_at - lead
    notice = example.model_copy(update={"published_at": published, "notice_at": published})
    now = published + read_after
    subject, text = read(notice, now)
    ahead = example.due_at > now
    assert ("has passed" not in text) == ahead, (notice.kind, text)
    if not ahead:
        assert " will " not in subject, subject
        assert re.search(r"(was|were) due", subject) or notice.kind == "date_changed", subject
    for count in re.findall(r"in (\d+) days?\b", text):
        assert ahead and int(count) == round((example.due_at - now).total_seconds() / 86400)
    if "will not happen before " in text:
        stated = text.split("will not happen before ", 1)[1]
        assert _LONG_DATE.match(stated) and stated.startswith(_weekday(now + lead))


def _weekday(when: datetime) -> str:
    return f"{when:%A} {when.day} {when:%B %Y}"


@pytest.mark.parametrize("late", [False, True])
def test_the_mailer_renders_records_and_dates_a_mail_on_its_one_clock(
    keystone: SimServer, people: People, table: DynamoTimerStore, smtp: Smtp,
    mailer_settings: MailerSettings, late: bool,
) -> None:  # fmt: skip
    """The mailer's clock (the simulated one in the demo, ``reclaim mailer --now``) is the
    one the mail counts from, its Date header and its delivery record: the sweeper counts
    the warning period from that record."""
    warning, _ = first_warning(
        shelve_timer().model_copy(
            update={"project_id": people.project_id, "user_id": people.owner_id}
        ),
        DUE - 7 * DAY,
    )
    now = DUE + 2 * DAY if late else DUE - 2 * DAY
    addresses = DirectoryAddresses(
        KeystoneDirectory(keystone.connect()), fallback=mailer_settings.fallback_contact,
        operators=mailer_settings.operators,
    )  # fmt: skip
    ledger = MailLedger(table)
    mailer = Mailer(
        mailer_settings, addresses, SmtpSender(mailer_settings), ledger, RENDERER,
        clock=lambda: now,
    )  # fmt: skip
    assert [d.result for d in mailer.handle(warning.payload())] == ["sent"]
    (mail,) = smtp.box.wait(1)
    text = " ".join(mail.get_body(("plain",)).get_content().split())  # type: ignore[union-attr]
    assert mail["Date"].datetime == now
    assert ledger.first_delivery([warning.notice_id]) == now
    if late:
        assert str(mail["Subject"]).endswith("was due to be shelved on 2026-03-08")
        assert "It may be shelved already" in text
        assert "will not happen before Tuesday 17 March 2026 at 09:00 UTC" in text
    else:
        assert str(mail["Subject"]).endswith("will be shelved on 2026-03-08")
        assert "on Sunday 8 March 2026 at 09:00 UTC, in 2 days." in text
