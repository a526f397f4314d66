"""The periods a mail states are the ones that apply, not the policy's defaults.

A notice's own period comes with the notice (the timer's ``delay``), so it is right even
when the mailer runs with other settings; another rule's period (a shelve mail saying when
shelved servers are deleted) is the mailer's own ``policy`` setting. Notices are built here
as the sweeper builds them: a rule schedules a timer, ``owner_notice`` makes the warnings,
``completion_notices`` the mails after the action, and the mailer reads the JSON payload.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reclaim.commands import Rule
from reclaim.durations import human_duration, parse_duration
from reclaim.mailer.render import Rendered, Renderer, duration
from reclaim.notices import NoticeMessage, parse_notice
from reclaim.notices.context import or_list
from reclaim.policy.projects import PROJECT_CLEANUP
from reclaim.policy.servers import DELETE_SHELVED, SHELVE
from reclaim.settings import PolicySettings
from reclaim.sweeper.actions import completion_notices
from reclaim.sweeper.notices import owner_notice
from reclaim.timers import Timer, merge

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
DEFAULTS = PolicySettings()
CONFIGURED = PolicySettings(
    shelve_after="10d",
    delete_shelved_after="90d",
    cleanup_after="120d",
    shelve_states=frozenset({"stopped", "suspended", "paused"}),
    delete_notices=("3d",),
)
#: What the mails used to say, and what the default settings say now.
DEFAULT_WORDS = ("two weeks", "six months", "2 weeks", "14 days", "180 days", "6 months")


# -- the duration filter -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("14d", "2 weeks"),
        ("7d", "1 week"),
        ("1w2d", "9 days"),
        ("10d", "10 days"),
        ("30d", "30 days"),
        ("180d", "180 days"),
        ("182d", "26 weeks"),
        ("1d", "1 day"),
        ("36h", "36 hours"),
        ("1h", "1 hour"),
        ("90m", "90 minutes"),
        ("45s", "45 seconds"),
        ("1.5s", "1.5 seconds"),
        ("1d1s", "1 day and 1 second"),
        ("1d1h1m", "1 day, 1 hour and 1 minute"),
        ("2d30m", "2 days and 30 minutes"),
        ("1m0.25s", "60.25 seconds"),
        ("2m0.5s", "2 minutes and 0.5 seconds"),
        ("3h", "3 hours"),
        ("50h", "2 days and 2 hours"),
        ("150m", "2 hours and 30 minutes"),
        ("0", "0 days"),
    ],
)
def test_a_duration_is_written_exactly_as_people_say_it(written: str, spoken: str) -> None:
    assert human_duration(parse_duration(written)) == spoken
    assert duration(written) == spoken


def test_no_month_or_year_is_made_up_and_nothing_is_rounded() -> None:
    for days in (28, 29, 30, 31, 60, 90, 91, 180, 183, 365, 366):
        spoken = human_duration(timedelta(days=days))
        assert "month" not in spoken and "year" not in spoken
        assert parse_duration(spoken.replace(" weeks", "w").replace(" week", "w")
                              .replace(" days", "d")) == timedelta(days=days)  # fmt: skip
    assert human_duration(timedelta(days=14, seconds=1)) == "14 days and 1 second"
    assert human_duration(-timedelta(days=1)) == "minus 1 day"


def test_the_filter_is_empty_for_nothing_and_keeps_a_string_that_is_no_duration() -> None:
    assert duration(None) == "" and human_duration(None) == ""
    assert duration("") == "" and duration("soon") == "soon"
    mail = Renderer(policy=DEFAULTS).text_env.from_string(
        "[{{ missing|duration }}] [{{ d|duration }}] [{{ s|or_list }}]"
    )
    text = mail.render(d=timedelta(hours=12), s={"suspended", "stopped"})
    assert text == "[] [12 hours] [stopped or suspended]"
    assert or_list(["c", "a", "b"]) == "a, b or c" and or_list(["x"]) == "x" and or_list([]) == ""


# -- notices as the sweeper makes them ------------------------------------------------------
def _timer(rule: Rule, delay: timedelta, offsets: tuple[timedelta, ...], **kw: Any) -> Timer:
    commands = rule.schedule(
        kw.pop("resource_id", "3f2a9c1e"),
        since=START,
        delay=delay,
        event_time=START,
        notices=rule.notices_before(offsets),
        **kw,
    )
    timer = merge(None, commands)
    assert timer is not None and timer.due_at == START + delay
    return timer


def _server(rule: Rule, delay: timedelta, offsets: tuple[timedelta, ...]) -> Timer:
    return _timer(rule, delay, offsets, project_id="p1", user_id="u1",
                  detail={"name": "analysis-vm", "state": "stopped"})  # fmt: skip


def sweeper_notices(policy: PolicySettings) -> dict[str, NoticeMessage]:
    """The four server mails and the project-cleaned one, from a sweeper with ``policy``,
    as the mailer receives them (through their JSON payload)."""
    shelve = _server(SHELVE, policy.shelve_after, policy.shelve_notices)
    delete = _server(DELETE_SHELVED, policy.delete_shelved_after, policy.delete_notices)
    cleanup = _timer(PROJECT_CLEANUP, policy.cleanup_after, (), resource_id="p1",
                     project_id="p1")  # fmt: skip
    made = [
        owner_notice(shelve, shelve.notices[0]),
        *completion_notices(shelve, "shelve"),
        owner_notice(delete, delete.notices[0]),
        *completion_notices(delete, "delete"),
        NoticeMessage(
            kind="project_cleaned",
            resource_type="project",
            resource_id="p1",
            project_id="p1",
            action="cleanup",
            due_at=cleanup.due_at,
            clause=cleanup.clause,
        ),  # fmt: skip  (as sweeper.actions._cleanup makes it)
    ]
    return {n.kind: parse_notice(n.payload()) for n in made}


def body(mail: Rendered) -> str:
    """What the mail itself says: its subject and text, without the quoted policy clause
    (checked on its own below) and the signature."""
    text = mail.text.split("This follows the resource recovery policy")[0]
    return " ".join(f"{mail.subject}\n{text}".split())


def mails(sweeper: PolicySettings, mailer: PolicySettings) -> dict[str, Rendered]:
    renderer = Renderer(policy=mailer)
    return {kind: renderer.render(n) for kind, n in sweeper_notices(sweeper).items()}


# -- what users read ------------------------------------------------------------------------
def test_with_configured_periods_the_mails_state_them_and_never_the_defaults() -> None:
    said = {kind: body(mail) for kind, mail in mails(CONFIGURED, CONFIGURED).items()}

    assert ("Servers left paused, stopped or suspended are shelved after 10 days."
            in said["shelve_upcoming"])  # fmt: skip
    assert (
        "It will be shelved on Wednesday 11 March 2026 at 09:00 UTC, in 7 days."
        in (said["shelve_upcoming"])
    )
    assert "a shelved server is deleted after 90 days." in said["shelve_upcoming"]

    assert ("was shelved on Wednesday 11 March 2026 at 09:00 UTC, after being paused, stopped "
            "or suspended for 10 days." in said["shelved"])  # fmt: skip
    assert ("A shelved server is deleted after 90 days of inactivity; you will be warned "
            "before that." in said["shelved"])  # fmt: skip

    assert "is shelved, and shelved servers are deleted after 90 days." in said["delete_upcoming"]
    assert "on Saturday 30 May 2026 at 09:00 UTC, in 3 days." in said["delete_upcoming"]

    assert (
        "was deleted on Saturday 30 May 2026 at 09:00 UTC, after 90 days shelved."
        in (said["deleted"])
    )
    assert (
        "29 June 2026 at 09:00 UTC, 120 days after its allocation ended."
        in (said["project_cleaned"])
    )
    for kind, text in said.items():
        wrong = [w for w in DEFAULT_WORDS if w in text]
        assert not wrong, f"{kind} states a default period {wrong}: {text}"


def test_with_the_default_settings_the_mails_state_the_defaults() -> None:
    said = {kind: body(mail) for kind, mail in mails(DEFAULTS, DEFAULTS).items()}

    assert ("Servers left stopped or suspended are shelved after 2 weeks."
            in said["shelve_upcoming"])  # fmt: skip
    assert "a shelved server is deleted after 180 days." in said["shelve_upcoming"]
    assert "after being stopped or suspended for 2 weeks." in said["shelved"]
    assert ("A shelved server is deleted after 180 days of inactivity; you will be warned "
            "before that." in said["shelved"])  # fmt: skip
    assert (
        "is shelved, and shelved servers are deleted after 180 days." in (said["delete_upcoming"])
    )
    assert ", in 30 days." in said["delete_upcoming"]
    assert ", after 180 days shelved." in said["deleted"]
    assert ", 180 days after its allocation ended." in said["project_cleaned"]


def test_the_html_mail_states_the_same_periods() -> None:
    html = mails(CONFIGURED, CONFIGURED)["shelve_upcoming"].html
    assert "Servers left paused, stopped or suspended are shelved after 10 days.</p>" in html
    assert "a shelved server is deleted after 90 days.</p>" in html
    assert "two weeks" not in html and "six months" not in html and "180 days" not in html


def test_a_notice_states_its_own_period_even_when_the_mailer_is_configured_otherwise() -> None:
    """The sweeper shelves after 10 days and deletes after 90; the mailer has the defaults.
    Each warning states the period its timer runs on; only the other rule's period (when a
    shelved server is deleted, in the shelve mail) is the mailer's, since the notice has
    none."""
    said = {kind: body(mail) for kind, mail in mails(CONFIGURED, DEFAULTS).items()}
    assert (
        "Servers left stopped or suspended are shelved after 10 days." in (said["shelve_upcoming"])
    )
    assert "a shelved server is deleted after 180 days." in said["shelve_upcoming"]
    assert "shelved servers are deleted after 90 days." in said["delete_upcoming"]
    assert "2 weeks" not in said["shelve_upcoming"]
    assert "after being stopped or suspended for 10 days." in said["shelved"]
    assert "after 90 days shelved." in said["deleted"]


def test_the_sweeper_puts_the_timers_period_in_the_notice() -> None:
    notices = sweeper_notices(CONFIGURED)
    assert notices["shelve_upcoming"].payload()["delay"] == "10d"
    assert notices["delete_upcoming"].payload()["delay"] == "90d"
    # and in the notices after the action, which the sweeper's actions make
    assert notices["shelved"].payload()["delay"] == "10d"
    assert notices["deleted"].payload()["delay"] == "90d"
    assert parse_notice(notices["shelve_upcoming"].payload()).delay == timedelta(days=10)


def test_no_warning_is_promised_when_no_deletion_notice_is_configured() -> None:
    quiet = CONFIGURED.model_copy(update={"delete_notices": ()})
    said = body(mails(CONFIGURED, quiet)["shelved"])
    assert "A shelved server is deleted after 90 days of inactivity." in said
    assert "warned" not in said


def test_a_notice_without_a_period_and_a_mailer_without_one_states_none() -> None:
    """A kind the mailer has no fallback for, with no ``delay``: no period is invented."""
    n = NoticeMessage(kind="deleted", resource_type="server", resource_id="s1",
                      project_id="p1", action="remove", detail={"name": "vm"})  # fmt: skip
    said = body(Renderer(policy=CONFIGURED).render(n))
    assert "was deleted." in said and "after" not in said


def test_the_quoted_policy_clause_states_the_configured_period_too() -> None:
    said = {kind: " ".join(m.text.split()) for kind, m in mails(CONFIGURED, CONFIGURED).items()}
    assert "can be shelved after 10 days in said state." in said["shelve_upcoming"]
    assert "will be deleted after 90 days of inactivity." in said["delete_upcoming"]
    assert "deleted 120 days after an allocation ends." in said["project_cleaned"]
    for text in said.values():
        assert "{period}" not in text and "two (2) weeks" not in text
