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
        (replace(STOPPED, locked=True), "skip", "locked"),
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
        (replace(SHELVED, locked=True), "skip", "locked"),
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


# -- notice lead time --------------------------------------------------------------------
def _late_timer(sent_at: datetime | None = None) -> Timer:
    from reclaim.timers import Notice

    due = datetime(2026, 3, 1, tzinfo=UTC)
    return Timer(
        resource_type="server",
        resource_id="s",
        rule="shelve",
        action="shelve",
        due_at=due,
        notices=(
            Notice(
                kind="shelve_upcoming",
                before=timedelta(days=1),
                due_at=due - timedelta(days=1),
                sent_at=sent_at,
            ),
        ),
    )


def test_an_action_due_with_its_first_notice_waits_the_lead_time() -> None:
    from reclaim.sweeper.rules import notice_hold

    now = datetime(2026, 3, 2, tzinfo=UTC)
    lead = timedelta(days=1)
    assert notice_hold(_late_timer(), now, lead) == now + lead
    assert notice_hold(_late_timer(sent_at=now - timedelta(hours=6)), now, lead) == now + timedelta(
        hours=18
    )
    assert notice_hold(_late_timer(sent_at=now - timedelta(days=2)), now, lead) is None
    assert notice_hold(_late_timer(), now, timedelta(0)) is None
    no_notices = _late_timer().model_copy(update={"notices": ()})
    assert notice_hold(no_notices, now, lead) is None
