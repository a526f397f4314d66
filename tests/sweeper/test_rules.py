"""The re-check rules: each disagreement between the timer and the live server means no action."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from reclaim.commands import TimerCommand
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


# -- a server that changed after the timer's start ----------------------------------------
def _run(action: str = "shelve") -> Timer:
    """A pending run as events make it: one observation at ``T0``, notices 7 d and 1 d."""
    from reclaim.policy.servers import DELETE_SHELVED, SHELVE
    from reclaim.timers import merge

    rule = SHELVE if action == "shelve" else DELETE_SHELVED
    delay = POLICY.shelve_after if action == "shelve" else POLICY.delete_shelved_after
    run = merge(
        None,
        rule.schedule(
            "s1",
            since=T0,
            delay=delay,
            event_time=T0,
            notices=(("warn", 7 * DAY), ("warn", DAY)),
            project_id="p1",
        ),
    )
    assert run is not None and run.state == "pending"
    return run


@pytest.mark.parametrize(
    ("action", "live"),
    [
        ("shelve", replace(STOPPED, updated_at=T0 + timedelta(hours=2))),
        ("shelve", replace(STOPPED, status="SUSPENDED", vm_state="suspended", updated_at=T0 + DAY)),
        ("delete", replace(SHELVED, updated_at=T0 + timedelta(days=3))),
        ("delete", replace(SHELVED, status="SHELVED", updated_at=T0 + timedelta(minutes=5))),
    ],
)
def test_a_change_after_the_start_in_the_rules_state_restarts_from_the_change(
    action: str, live: ServerSnapshot
) -> None:
    decide = decide_shelve if action == "shelve" else decide_delete
    decision = decide(timer(action), live, POLICY)
    assert decision.kind == "restart"
    assert decision.since == live.updated_at
    assert decision.reason.startswith(f"restarted: server changed at {live.updated_at:%Y-%m-%d}")


@pytest.mark.parametrize(
    ("action", "live", "kind"),
    [
        # the change ended the condition: closed as before, never restarted
        (
            "shelve",
            replace(STOPPED, status="ACTIVE", vm_state="active", updated_at=T0 + DAY),
            "skip",
        ),
        (
            "shelve",
            replace(STOPPED, metadata={"reclaim:exempt": "yes"}, updated_at=T0 + DAY),
            "skip",
        ),
        ("shelve", replace(STOPPED, project_id="p2", updated_at=T0 + DAY), "skip"),
        ("shelve", replace(STOPPED, locked=True, updated_at=T0 + DAY), "hold"),
        (
            "delete",
            replace(SHELVED, status="SHUTOFF", vm_state="stopped", updated_at=T0 + DAY),
            "skip",
        ),
        ("delete", replace(SHELVED, task_state="unshelving", updated_at=T0 + DAY), "wait"),
        # within the tolerance (and the offload's grace) nothing restarts
        ("shelve", replace(STOPPED, updated_at=T0 + timedelta(seconds=4)), "act"),
        ("delete", replace(SHELVED, updated_at=T0 + timedelta(hours=20)), "act"),
    ],
)
def test_a_change_that_ends_the_condition_or_is_within_tolerance_does_not_restart(
    action: str, live: ServerSnapshot, kind: str
) -> None:
    decide = decide_shelve if action == "shelve" else decide_delete
    assert decide(timer(action), live, POLICY).kind == kind


@pytest.mark.parametrize("action", ["shelve", "delete"])
def test_a_restarted_period_runs_from_the_change_with_every_notice_again(action: str) -> None:
    from reclaim.sweeper.rules import action_date, restart_period
    from reclaim.timers import mark_notice_sent

    run = _run(action)
    assert run.due_at is not None
    warned = mark_notice_sent(run, run.notices[0], run.notices[0].due_at)
    warned = warned.model_copy(update={"attempts": 2})
    changed = T0 + 3 * DAY

    restarted = restart_period(warned, changed)

    assert restarted.state == "pending" and restarted.since == changed
    assert restarted.due_at == changed + run.delay > run.due_at
    assert [(n.before, n.due_at, n.sent_at) for n in restarted.notices] == [
        (7 * DAY, changed + run.delay - 7 * DAY, None),
        (DAY, changed + run.delay - DAY, None),
    ]
    assert restarted.attempts == 0
    # never earlier than the date the notices already given announced
    assert action_date(restarted) is not None and action_date(warned) is not None
    assert action_date(restarted) > action_date(warned)  # type: ignore[operator]


def test_a_restarted_period_keeps_an_extension_granted() -> None:
    from reclaim.sweeper.rules import restart_period
    from reclaim.timers import AuditEntry, extend

    run = extend(_run(), 10 * DAY, T0 + DAY, AuditEntry(at=T0 + DAY, what="extend"))
    restarted = restart_period(run, T0 + 2 * DAY)
    assert restarted.due_at == T0 + 2 * DAY + POLICY.shelve_after + 10 * DAY


def test_events_merge_into_a_restarted_period_as_into_any_run() -> None:
    """An older event redelivered changes nothing; a newer observation keeps the restarted
    date; a newer end of the condition (started) cancels it."""
    from reclaim.policy.servers import SHELVE
    from reclaim.sweeper.rules import restart_period
    from reclaim.timers import merge

    changed = T0 + 3 * DAY
    restarted = restart_period(_run(), changed)

    def stopped(at: datetime) -> list[TimerCommand]:
        return SHELVE.schedule(
            "s1", since=at, delay=POLICY.shelve_after, event_time=at, project_id="p1",
            notices=(("warn", 7 * DAY), ("warn", DAY)),
        )  # fmt: skip

    assert merge(restarted, stopped(T0)) == restarted
    renamed = merge(restarted, stopped(changed + timedelta(seconds=1)))
    assert renamed is not None
    assert (renamed.since, renamed.due_at, renamed.notices) == (
        restarted.since,
        restarted.due_at,
        restarted.notices,
    )
    started = merge(restarted, [SHELVE.cancel("s1", event_time=changed + DAY)])
    assert started is not None and started.state == "cancelled"


def test_only_a_pending_run_restarts() -> None:
    from reclaim.sweeper.rules import restart_period

    with pytest.raises(ValueError, match="pending"):
        restart_period(_run().model_copy(update={"state": "skipped"}), T0 + DAY)


def test_a_reconcile_leaves_a_restarted_period_as_it_is() -> None:
    """The next reconcile lists the server with the same ``updated``: no drift, no move."""
    from reclaim.reconcile.observe import plan_server, server_notification
    from reclaim.sweeper.rules import restart_period

    changed = T0 + 3 * DAY  # Nova's updated_at: whole seconds
    restarted = restart_period(_run(), changed)
    listing = {
        "id": "s1",
        "tenant_id": "p1",
        "OS-EXT-STS:vm_state": "stopped",
        "updated": f"{changed:%Y-%m-%dT%H:%M:%SZ}",
        "locked": False,
    }
    plans = plan_server(server_notification(listing), [restarted], POLICY, changed + 2 * DAY)
    (shelve,) = [p for p in plans if p.rule == "shelve"]
    assert shelve.change == "unchanged"
    assert shelve.after is not None and shelve.after.due_at == restarted.due_at
