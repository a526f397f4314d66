"""``reclaim.timers.extend``: a postponed action is restated as a corrected date is, for
this run of the condition only (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta

from reclaim.commands import TimerCommand
from reclaim.notices.kinds import DATE_CHANGED
from reclaim.policy.servers import SHELVE
from reclaim.settings import PolicySettings
from reclaim.timers import AuditEntry, Timer, extend, mark_notice_sent, merge
from tests.web.conftest import SERVER, T0

POLICY = PolicySettings()
ENTRY = AuditEntry(at=T0, what="extend", outcome="granted", detail={"by": "ada"})


def stopped(at: datetime = T0) -> list[TimerCommand]:
    """The commands of Nova saying the server is stopped at ``at``."""
    return SHELVE.schedule(
        SERVER, since=at, delay=POLICY.shelve_after, event_time=at,
        notices=SHELVE.notices_before(POLICY.shelve_notices),
    )  # fmt: skip


def warned() -> Timer:
    t = merge(None, stopped())
    assert t is not None
    return mark_notice_sent(t, t.notices[0], T0 + timedelta(days=7))


def test_extend_moves_the_due_date_and_tells_it_once() -> None:
    t = warned()
    now = T0 + timedelta(days=8)
    moved = extend(t, timedelta(days=14), now, ENTRY.model_copy(update={"at": now}))
    assert moved.due_at == T0 + timedelta(days=28)
    assert moved.extension == timedelta(days=14)
    assert [(n.kind, n.due_at) for n in moved.pending_notices()] == [
        (DATE_CHANGED, now),
        ("shelve_upcoming", T0 + timedelta(days=27)),
    ]
    given = [n for n in moved.notices if n.sent_at is not None]
    assert [n.kind for n in given] == ["shelve_upcoming"]  # the 7-day warning stays given
    assert moved.history[-1].what == "extend"


def test_a_later_event_of_the_same_run_keeps_the_extension() -> None:
    moved = extend(warned(), timedelta(days=14), T0 + timedelta(days=8), ENTRY)
    again = merge(moved, stopped(T0 + timedelta(days=9)))  # Nova says it is still stopped
    assert again is not None
    assert again.due_at == T0 + timedelta(days=28)
    assert again.extension == timedelta(days=14)


def test_a_new_run_of_the_condition_starts_without_it() -> None:
    moved = extend(warned(), timedelta(days=14), T0 + timedelta(days=8), ENTRY)
    started = merge(moved, [SHELVE.cancel(SERVER, event_time=T0 + timedelta(days=9))])
    assert started is not None and started.state == "cancelled"
    stopped_again = merge(started, stopped(T0 + timedelta(days=10)))
    assert stopped_again is not None
    assert stopped_again.extension == timedelta(0)
    assert stopped_again.due_at == T0 + timedelta(days=24)
