"""A server that changed after its timer's start but is still in the rule's state (renamed,
locked then unlocked, metadata set: Nova moves ``updated_at`` on any change) keeps its
timer: no action at the first due date, the rule's period restarted from the change with
every notice again, the action after the new period. Against the simulated cloud."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from reclaim.policy.servers import SERVER_RULES
from reclaim.sweeper import OpenStackCloud, RecordingNotices
from reclaim.sweeper.rules import ServerSnapshot
from reclaim.timers import Timer
from tests.support.delivery import DeliveredNotices
from tests.sweeper.conftest import NOW, World, deliver_on_time, make_sweeper

DAY = timedelta(days=1)


def only(world: World, server_id: str, rule: str) -> Timer:
    (t,) = [t for t in world.store.timers_for("server", server_id) if t.rule == rule]
    return t


def change(world: World, conn: Any, sid: str, how: str) -> None:
    """Change the server through Nova's API, at the simulated cloud's clock (NOW)."""
    if how == "renamed":
        conn.compute.update_server(sid, name="renamed")
    elif how == "locked and unlocked":
        conn.compute.lock_server(sid)
        conn.compute.unlock_server(sid)
    elif how == "metadata set":
        conn.compute.set_server_metadata(sid, purpose="thesis data")
    else:
        raise ValueError(how)


def changed_after_its_start(
    world: World, conn: Any, rule: str = "shelve", how: str = "renamed"
) -> tuple[str, datetime]:
    """A server stopped (or shelved) before NOW, its timer due after NOW with every notice
    before that date given and delivered, then changed at NOW: (server id, first due date)."""
    delay = timedelta(days=14) if rule == "shelve" else timedelta(days=180)
    state = "stopped" if rule == "shelve" else "shelved_offloaded"
    since = NOW - delay + 4 * DAY
    sid = world.server(state, updated_at=since)
    world.timer(sid, rule, since, delivered=False)
    first_due = since + delay
    deliver_on_time(world.store, "server", sid, rule, world.cloud, before=first_due)
    change(world, conn, sid, how)
    live = world.cloud.compute.servers[sid]
    assert (live.vm_state, live.updated_at) == (state, NOW)  # still in the rule's state
    world.cloud.requests.clear()
    return sid, first_due


@pytest.mark.parametrize(
    ("rule", "how"),
    [
        ("shelve", "renamed"),
        ("shelve", "locked and unlocked"),
        ("delete-shelved", "metadata set"),
    ],
)
def test_a_changed_server_still_in_the_rules_state_gets_the_whole_period_again(
    world: World, cloud_port: OpenStackCloud, admin_conn: Any, rule: str, how: str
) -> None:
    sid, first_due = changed_after_its_start(world, admin_conn, rule, how)
    before = only(world, sid, rule)
    clock = [first_due]
    notices = DeliveredNotices(world.store, lambda: clock[0])

    first = make_sweeper(world, cloud_port, notices).sweep(first_due)

    (outcome,) = first.outcomes
    assert outcome.result == "restarted", outcome
    assert outcome.reason.startswith(f"restarted: server changed at {NOW.isoformat()}")
    assert world.mutations() == [] and notices.messages == []
    t = only(world, sid, rule)
    assert t.state == "pending" and t.since == NOW
    assert t.due_at == NOW + before.delay
    assert [n.sent_at for n in t.notices] == [None] * len(before.notices)
    assert [n.due_at for n in t.notices] == [t.due_at - n.before for n in t.notices]
    last = t.history[-1]
    assert (last.what, last.outcome) == (before.action, "restarted")
    assert last.detail["why"] == outcome.reason.split("; ")[0]
    assert last.detail["due_at"] == t.due_at.isoformat()

    # nothing more at the first due date, nor until the new period's first notice
    assert make_sweeper(world, cloud_port, notices).sweep(first_due + DAY).outcomes == []
    # the owner is warned again, each notice at its time, stating the new date
    for n in sorted(t.notices, key=lambda n: n.due_at):
        clock[0] = n.due_at
        warned = make_sweeper(world, cloud_port, notices).sweep(n.due_at)
        assert [o.result for o in warned.outcomes] == ["notified"], warned.outcomes
        assert notices.messages[-1].due_at == t.due_at
    assert world.mutations() == []

    clock[0] = t.due_at
    acted = make_sweeper(world, cloud_port, notices).sweep(t.due_at)

    assert [o.result for o in acted.outcomes] == ["done"], acted.outcomes
    upcoming = f"{before.action}_upcoming"
    done = "shelved" if rule == "shelve" else "deleted"
    assert notices.kinds() == [upcoming] * len(t.notices) + [done]
    if rule == "shelve":
        assert world.shelves(sid) == 1
    else:
        assert sid not in world.cloud.compute.servers
    closed = only(world, sid, rule)
    assert closed.state == "done"
    outcomes = [e.outcome for e in closed.history]
    assert outcomes.index("restarted") < outcomes.index("done") == len(outcomes) - 1


def test_a_server_started_after_its_start_is_not_restated(
    world: World, cloud_port: OpenStackCloud, admin_conn: Any
) -> None:
    """Started (the event lost): the rule no longer holds, the timer closes as before."""
    sid, first_due = changed_after_its_start(world, admin_conn)
    admin_conn.compute.start_server(sid)
    assert world.cloud.compute.servers[sid].status == "ACTIVE"
    world.cloud.requests.clear()

    report = make_sweeper(world, cloud_port).sweep(first_due)

    (outcome,) = report.outcomes
    assert outcome.result == "skipped" and "status ACTIVE" in outcome.reason
    t = only(world, sid, "shelve")
    assert t.state == "skipped" and "restarted" not in [e.outcome for e in t.history]
    assert world.mutations() == []


class _EventDuringRead:
    """The cloud, with the server's start event stored while the sweeper reads the server:
    Nova showed it stopped, the event ends the run before the sweeper writes."""

    def __init__(self, cloud: OpenStackCloud, world: World) -> None:
        self._cloud = cloud
        self._world = world

    def server(self, server_id: str) -> ServerSnapshot | None:
        live = self._cloud.server(server_id)
        started = NOW + timedelta(seconds=30)
        self._world.store.apply([r.cancel(server_id, event_time=started) for r in SERVER_RULES])
        return live

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cloud, name)


def test_an_event_that_ends_the_run_meanwhile_wins_over_the_restart(
    world: World, cloud_port: OpenStackCloud, admin_conn: Any
) -> None:
    sid, first_due = changed_after_its_start(world, admin_conn)
    racing = _EventDuringRead(cloud_port, world)

    report = make_sweeper(world, racing).sweep(first_due)

    (outcome,) = report.outcomes
    assert outcome.result == "contended" and "not restarted" in outcome.reason
    t = only(world, sid, "shelve")
    assert t.state == "cancelled" and t.lease_owner is None
    assert "restarted" not in [e.outcome for e in t.history]
    assert world.mutations() == []


def test_a_dry_run_says_it_would_restart_and_writes_nothing(
    world: World, cloud_port: OpenStackCloud, admin_conn: Any
) -> None:
    sid, first_due = changed_after_its_start(world, admin_conn)
    before = only(world, sid, "shelve")
    notices = RecordingNotices()

    dry = make_sweeper(world, cloud_port, notices).sweep(first_due, dry_run=True)

    (outcome,) = dry.outcomes
    assert outcome.result == "would-restart"
    assert outcome.reason.startswith("restarted: server changed at")
    assert only(world, sid, "shelve") == before
    assert world.mutations() == [] and notices.messages == []
    real = make_sweeper(world, cloud_port, notices).sweep(first_due)
    assert [o.result for o in real.outcomes] == ["restarted"]


def test_a_restart_found_late_warns_from_the_next_sweep_with_the_whole_lead(
    world: World, cloud_port: OpenStackCloud, admin_conn: Any
) -> None:
    """A sweep that comes long after the change restates a period already over: its
    notices are due at once, yet this sweep sends none and acts on nothing; the next sweep
    warns, stating a date the notice's whole lead ahead."""
    sid, _first_due = changed_after_its_start(world, admin_conn)
    late = NOW + 30 * DAY
    notices = RecordingNotices()

    first = make_sweeper(world, cloud_port, notices).sweep(late)

    assert [o.result for o in first.outcomes] == ["restarted"]
    t = only(world, sid, "shelve")
    assert t.due_at == NOW + 14 * DAY < late and t.lease_owner == "sweeper-a"
    other = make_sweeper(world, cloud_port, notices, owner="sweeper-b").sweep(late)
    assert [o.result for o in other.outcomes] == ["leased"]
    assert notices.messages == [] and world.mutations() == []

    after_lease = late + timedelta(minutes=11)
    warned = make_sweeper(world, cloud_port, notices, owner="sweeper-b").sweep(after_lease)

    assert [o.result for o in warned.outcomes] == ["notified"]
    assert [(m.kind, m.due_at) for m in notices.messages] == [
        ("shelve_upcoming", after_lease + 7 * DAY)
    ]
    assert world.mutations() == []
