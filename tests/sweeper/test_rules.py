"""The re-check rules: each disagreement between the timer and the live server means no action."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from reclaim.settings import PolicySettings
from reclaim.sweeper.rules import ServerSnapshot, decide_delete, decide_shelve
from reclaim.timers import Timer

T0 = datetime(2026, 2, 1, tzinfo=UTC)
POLICY = PolicySettings()


def timer(action: str = "shelve") -> Timer:
    return Timer(
        resource_type="server",
        resource_id="s1",
        rule="shelve" if action == "shelve" else "delete-shelved",
        action=action,
        project_id="p1",
        since=T0,
        due_at=T0 + timedelta(days=14),
    )


STOPPED = ServerSnapshot(
    id="s1",
    status="SHUTOFF",
    project_id="p1",
    updated_at=T0 - timedelta(minutes=1),
    locked=False,
    vm_state="stopped",
)
SHELVED = replace(STOPPED, status="SHELVED_OFFLOADED", vm_state="shelved_offloaded")


def test_shelve_acts_when_the_rule_holds() -> None:
    assert decide_shelve(timer(), STOPPED, POLICY).kind == "act"
    suspended = replace(STOPPED, status="SUSPENDED", vm_state="suspended")
    assert decide_shelve(timer(), suspended, POLICY).kind == "act"


@pytest.mark.parametrize(
    ("live", "kind", "words"),
    [
        (replace(STOPPED, status="ACTIVE", vm_state="active"), "skip", "status ACTIVE"),
        (replace(STOPPED, updated_at=T0 + timedelta(hours=2)), "skip", "changed"),
        (replace(STOPPED, locked=True), "hold", "locked"),
        (replace(STOPPED, metadata={"reclaim:exempt": "yes"}), "skip", "exempt"),
        (replace(STOPPED, project_id="p2"), "skip", "owner changed"),
        (replace(STOPPED, task_state="powering-on"), "wait", "in progress"),
        (replace(STOPPED, locked=None), "wait", "locked"),
        (replace(STOPPED, updated_at=None), "wait", "incomplete"),
        (replace(STOPPED, project_id=None), "wait", "incomplete"),
        (replace(STOPPED, status="SHELVED"), "done", "already"),
        (None, "gone", ""),
    ],
)
def test_shelve_disagreements_do_not_act(
    live: ServerSnapshot | None, kind: str, words: str
) -> None:
    decision = decide_shelve(timer(), live, POLICY)
    assert decision.kind == kind
    assert words in decision.reason


def test_shelve_respects_configured_exemptions_and_states() -> None:
    assert (
        decide_shelve(timer(), STOPPED, PolicySettings(exempt_servers=frozenset({"s1"}))).kind
        == "skip"
    )
    assert (
        decide_shelve(timer(), STOPPED, PolicySettings(exempt_projects=frozenset({"p1"}))).kind
        == "skip"
    )
    only_suspended = PolicySettings(shelve_states=frozenset({"suspended"}))
    assert decide_shelve(timer(), STOPPED, only_suspended).kind == "skip"


def test_a_locked_server_is_reported() -> None:
    assert decide_shelve(timer(), replace(STOPPED, locked=True), POLICY).report
    assert decide_delete(timer("delete"), replace(SHELVED, locked=True), POLICY).report


def test_delete_acts_only_on_a_server_shelved_for_the_whole_period() -> None:
    assert decide_delete(timer("delete"), SHELVED, POLICY).kind == "act"
    # the offload shortly after the shelve keeps the clock
    offloaded_later = replace(SHELVED, updated_at=T0 + timedelta(hours=3))
    assert decide_delete(timer("delete"), offloaded_later, POLICY).kind == "act"


@pytest.mark.parametrize(
    ("live", "kind", "words"),
    [
        (replace(SHELVED, status="ACTIVE", vm_state="active"), "skip", "status ACTIVE"),
        (replace(SHELVED, status="SHUTOFF", vm_state="stopped"), "skip", "status SHUTOFF"),
        (replace(SHELVED, updated_at=T0 + timedelta(days=3)), "skip", "changed"),
        (
            replace(SHELVED, status="SHELVED", updated_at=T0 + timedelta(minutes=5)),
            "skip",
            "changed",
        ),
        (replace(SHELVED, locked=True), "hold", "locked"),
        (replace(SHELVED, metadata={"reclaim:exempt": "1"}), "skip", "exempt"),
        (replace(SHELVED, project_id="p2"), "skip", "owner changed"),
        (replace(SHELVED, task_state="unshelving"), "wait", "in progress"),
        (replace(SHELVED, updated_at=None), "wait", "incomplete"),
        (None, "gone", ""),
    ],
)
def test_delete_disagreements_do_not_act(
    live: ServerSnapshot | None, kind: str, words: str
) -> None:
    decision = decide_delete(timer("delete"), live, POLICY)
    assert decision.kind == kind
    assert words in decision.reason


def test_an_exempt_flag_set_to_false_does_not_exempt() -> None:
    assert (
        decide_shelve(timer(), replace(STOPPED, metadata={"reclaim:exempt": "false"}), POLICY).kind
        == "act"
    )


# -- the warning period -------------------------------------------------------------------
DAY = timedelta(days=1)


def _scheduled(due: datetime, *sent: datetime | None) -> Timer:
    """A shelve-like timer due at ``due`` with notices 7 d and 1 d before, sent at ``sent``."""
    from reclaim.timers import Notice

    times = [*sent, None, None][:2]
    return Timer(
        resource_type="server",
        resource_id="s",
        rule="shelve",
        action="shelve",
        due_at=due,
        notice_spec=(("shelve_upcoming", 7 * DAY), ("shelve_upcoming", DAY)),
        notices=tuple(
            Notice(kind="shelve_upcoming", before=b, due_at=due - b, sent_at=at)
            for b, at in zip((7 * DAY, DAY), times, strict=True)
        ),
    )


def test_a_late_schedule_is_restated_forward_one_notice_at_a_time() -> None:
    from reclaim.sweeper.rules import action_date, next_work, notices_due

    now = datetime(2026, 3, 10, tzinfo=UTC)
    late = _scheduled(now - 30 * DAY)
    (first,) = notices_due(late, now)
    assert first[0].before == 7 * DAY and first[1] == now + 7 * DAY
    after_first = _scheduled(now - 30 * DAY, now)
    assert action_date(after_first) == now + 7 * DAY
    assert next_work(after_first) == now + 6 * DAY
    assert notices_due(after_first, now + 5 * DAY) == []
    ((second, date),) = notices_due(after_first, now + 6 * DAY)
    assert second.before == DAY and date == now + 7 * DAY
    # a second notice sent late moves the date by its own lead, never into the past
    ((_n, later),) = notices_due(after_first, now + 9 * DAY)
    assert later == now + 10 * DAY


def test_a_schedule_on_time_keeps_its_dates() -> None:
    from reclaim.sweeper.rules import action_date, notices_due

    due = datetime(2026, 3, 10, tzinfo=UTC)
    on_time = _scheduled(due)
    assert notices_due(on_time, due - 8 * DAY) == []
    ((_n, date),) = notices_due(on_time, due - 7 * DAY)
    assert date == due
    assert action_date(_scheduled(due, due - 7 * DAY, due - DAY)) == due


def test_no_action_before_the_first_delivery_plus_the_longest_lead() -> None:
    from reclaim.sweeper.rules import delivery_hold

    due = datetime(2026, 3, 10, tzinfo=UTC)
    sent = _scheduled(due, due - 7 * DAY, due - DAY)
    undelivered = delivery_hold(sent, due, None)
    assert undelivered is not None and undelivered.alert and undelivered.until is None
    late = delivery_hold(sent, due, due - 2 * DAY)
    assert late is not None and late.until == due + 5 * DAY and not late.alert
    assert late.reason == (
        "held: first notice delivered 2026-03-08 00:00, action not before 2026-03-15 00:00"
    )
    assert delivery_hold(sent, due, due - 7 * DAY) is None
    assert delivery_hold(sent.model_copy(update={"notices": ()}), due, None) is None
