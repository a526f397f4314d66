"""Nothing is destroyed, and nobody is warned, on one unconfirmed signal: the sweeper checks
Keystone and the live resource before the first notice and before the action."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from reclaim import routes
from reclaim.cli import sweep as sweep_cli
from reclaim.policy.projects import on_owner_removed
from reclaim.settings import PolicySettings
from reclaim.sweeper import OpenStackCloud, RecordingNotices
from tests.support.builders import event
from tests.sweeper.conftest import NOW, World, make_sweeper

app = typer.Typer()
sweep_cli.register(app)
runner = CliRunner()
DAY = timedelta(days=1)


@pytest.fixture
def env(cli_store: str) -> str:
    return cli_store


def _ended(world: World, project_id: str, days_ago: int = 200) -> None:
    """An ``allocation.ended`` event whose end date is ``days_ago`` before NOW, as the bus
    listener stores it."""
    n = event(
        "allocation.ended",
        {"project_id": project_id, "end_date": (NOW - days_ago * DAY).isoformat()},
        NOW - DAY,
    )
    world.store.apply(routes.decide(n, PolicySettings()))


def test_a_backdated_allocation_event_against_an_active_allocation_deletes_nothing(
    world: World, cloud_port: OpenStackCloud, env: str
) -> None:
    cloud = world.cloud
    live = cloud.identity.create_project(
        f"live-{id(world)}", tags=["allocation-active"],
        properties={"allocation_end": "2027-12-31"},
    )  # fmt: skip
    world.server(project_id=live.id)
    _ended(world, live.id)
    notices = RecordingNotices()
    sweeper = make_sweeper(world, cloud_port, notices)
    for day in range(0, 60, 3):
        sweeper.sweep(NOW + day * DAY)

    assert world.mutations() == []
    # users heard nothing; operators got one alert naming the project and what Keystone says
    assert [m.kind for m in notices.messages if not m.operator] == []
    alerts = [m for m in notices.messages if m.kind == "cleanup_unconfirmed"]
    assert len(alerts) == 1 and alerts[0].resource_id == live.id
    assert "allocation_end=2027-12-31: the allocation runs" in alerts[0].detail["reason"]
    (t,) = [t for t in world.store.timers_for("project", live.id) if t.rule == "project-cleanup"]
    assert t.state == "pending"
    assert [e.outcome for e in t.history] == ["held"]

    audit = runner.invoke(app, ["audit", "project", live.id, "--store", env])
    assert audit.exit_code == 0, audit.output
    assert "held: allocation not confirmed by Keystone" in " ".join(audit.stdout.split())
    plan = runner.invoke(
        app, ["plan", "--store", env, "--now", (NOW + 60 * DAY).isoformat(), "--json"]
    )
    rows = [r for r in json.loads(plan.stdout) if r["resource_id"] == live.id]
    assert [r["what"] for r in rows if r["rule"] == "project-cleanup"] == [
        "cleanup (held: allocation not confirmed by Keystone (allocation_end=2027-12-31: the "
        "allocation runs))"
    ]


def test_a_project_held_for_one_cause_alerts_operators_once(
    world: World, cloud_port: OpenStackCloud
) -> None:
    """The cleanup and both dependents' scans of a project wait on the same unconfirmed
    allocation: one alert names the project and the cause, whichever rule is looked at
    first, in one sweep or across several (each rule's hold is still in its audit)."""
    cloud = world.cloud
    live = cloud.identity.create_project(
        f"runs-{id(world)}", properties={"allocation_end": "2027-12-31"}
    )
    later = cloud.identity.create_project(
        f"later-{id(world)}", properties={"allocation_end": "2027-12-31"}
    )
    _ended(world, live.id)  # every rule due at once
    _ended(world, later.id, days_ago=150)  # the second scan falls due 23 days on
    notices = RecordingNotices()
    sweeper = make_sweeper(world, cloud_port, notices)
    for day in (0, 10, 25, 40, 60):
        sweeper.sweep(NOW + day * DAY)

    alerts = [(m.kind, m.resource_id) for m in notices.messages if m.operator]
    assert sorted(alerts) == sorted(
        [("cleanup_unconfirmed", live.id), ("cleanup_unconfirmed", later.id)]
    )
    for project in (live.id, later.id):
        timers = world.store.timers_for("project", project)
        assert len(timers) == 3
        assert all(t.state == "pending" and t.history[-1].outcome == "held" for t in timers)
    held_at = {t.history[-1].at for t in world.store.timers_for("project", later.id)}
    assert held_at == {NOW, NOW + 25 * DAY}  # the second scan was held by a later sweep


def test_an_allocation_keystone_confirms_ended_is_warned_then_cleaned(
    world: World, cloud_port: OpenStackCloud
) -> None:
    """The same late event for a project whose Keystone record says the allocation ended:
    the first notice goes out now and the cleanup waits the whole warning period."""
    cloud = world.cloud
    ended = cloud.identity.create_project(
        f"ended-{id(world)}", properties={"allocation_end": (NOW - 200 * DAY).date().isoformat()}
    )
    _ended(world, ended.id)
    notices = RecordingNotices()
    first = make_sweeper(world, cloud_port, notices).sweep(NOW)
    cleanup = [o for o in first.outcomes if o.rule == "project-cleanup"]
    assert [o.result for o in cleanup] == ["notified"]
    owner = [m for m in notices.messages if m.resource_id == ended.id and not m.operator]
    assert {m.kind for m in owner} >= {"allocation_ended", "cleanup_upcoming"}
    assert all(m.due_at == NOW + 30 * DAY for m in owner if m.action == "cleanup")


def test_trusting_events_is_a_choice_and_never_overrides_a_running_allocation(
    world: World, cloud_port: OpenStackCloud
) -> None:
    cloud = world.cloud
    silent = cloud.identity.create_project(f"silent-{id(world)}")
    running = cloud.identity.create_project(
        f"running-{id(world)}", properties={"allocation_end": "2027-12-31"}
    )
    for p in (silent, running):
        _ended(world, p.id)
    notices = RecordingNotices()
    make_sweeper(world, cloud_port, notices, trust_allocation_events=True).sweep(NOW)
    told = {m.resource_id for m in notices.messages if m.kind == "cleanup_upcoming"}
    assert told == {silent.id}
    unconfirmed = {m.resource_id for m in notices.messages if m.kind == "cleanup_unconfirmed"}
    assert unconfirmed == {running.id}


def test_a_forged_event_mails_nobody(world: World, cloud_port: OpenStackCloud) -> None:
    """A timer claiming project A for a server of project B: the re-check before the first
    notice refuses it, A's members hear nothing, operators are told."""
    other = world.cloud.identity.create_project(f"b-{id(world)}")
    sid = world.server(project_id=other.id)
    world.timer(sid, delivered=False)  # says project A (world.project_id)
    notices = RecordingNotices()
    report = make_sweeper(world, cloud_port, notices).sweep(NOW)
    assert [o.result for o in report.outcomes] == ["skipped"]
    assert "owner changed" in report.outcomes[0].reason
    assert notices.kinds() == ["action_skipped"]
    assert world.mutations() == []


def test_a_user_still_in_keystone_loses_no_image_and_a_gone_one_without_images_is_not_warned(
    world: World, cloud_port: OpenStackCloud
) -> None:
    cloud = world.cloud
    present = cloud.identity.create_user(f"still-{id(world)}")
    cloud.image.create_image(
        owner=world.project_id, name="snap", visibility="community", status="active",
        properties={"user_id": present.id},
    )  # fmt: skip
    gone = cloud.identity.create_user(f"gone-{id(world)}")
    cloud.identity.delete_user(gone.id)
    for uid in (present.id, gone.id):
        removed = event("identity.user.deleted", {"resource_info": uid}, NOW - 40 * DAY)
        world.store.apply(on_owner_removed(removed, PolicySettings()))
    notices = RecordingNotices()
    sweeper = make_sweeper(world, cloud_port, notices)
    for day in (0, 1, 10):
        sweeper.sweep(NOW + day * DAY)
    assert world.mutations() == []
    for_users = [m for m in notices.messages if not m.operator]
    assert for_users == [], [m.kind for m in for_users]
    held = [m for m in notices.messages if m.kind == "action_held"]
    assert {m.resource_id for m in held} == {present.id}
    assert all("still exists in Keystone" in m.detail["reason"] for m in held)
    (t,) = [t for t in world.store.timers_for("user", gone.id) if t.rule == "owner-images"]
    assert t.state == "done"


def test_an_external_consumer_acknowledges_a_notice_and_the_period_counts_from_then(
    world: World, cloud_port: OpenStackCloud, env: str
) -> None:
    from reclaim.cli import app as reclaim

    sid = world.server()
    world.timer(sid, delivered=False)
    notices = RecordingNotices()
    sweeper = make_sweeper(world, cloud_port, notices)
    sweeper.sweep(NOW)
    (first,) = notices.messages
    bad = runner.invoke(reclaim, ["notices", "ack", "not-an-id", "--store", env])
    assert bad.exit_code == 2 and "is not a notice id" in bad.output
    assert len(bad.output.strip().splitlines()) == 1
    acked = runner.invoke(
        reclaim, ["notices", "ack", first.notice_id, "--consumer", "portal", "--store", env]
    )
    assert acked.exit_code == 0, acked.output
    assert f"acknowledged {first.notice_id} for portal" in acked.stdout
    again = runner.invoke(
        reclaim, ["notices", "ack", first.notice_id, "--consumer", "portal", "--store", env]
    )
    assert "already acknowledged" in again.stdout
    # acknowledged now (wall clock, after NOW): the shelve waits 7 days from the ack
    for day in (6, 8):
        sweeper.sweep(NOW + day * DAY)
    assert world.shelves(sid) == 0
    from datetime import UTC, datetime

    later = max(NOW, datetime.now(UTC)) + 8 * DAY
    assert [o.result for o in sweeper.sweep(later).outcomes] == ["done"]
    assert world.shelves(sid) == 1


def test_a_locked_server_is_held_quietly_across_sweeps_and_reconciles(
    world: World, cloud_port: OpenStackCloud, admin_conn: Any
) -> None:
    """A locked server is not shelved, and its owner is not warned again by each reconcile
    and sweep: operators hear once; the owner only when a new date is set."""
    from reclaim.reconcile.engine import reconcile
    from reclaim.settings import Settings

    sid = world.server()
    world.timer(sid)  # warned on time, the shelve is due
    world.cloud.compute.servers[sid].locked = True
    settings = Settings(reconcile={"first_install_grace": "0s"})
    notices = RecordingNotices()
    sweeper = make_sweeper(world, cloud_port, notices)
    for day in range(0, 30, 3):
        reconcile(admin_conn, world.store, settings, NOW + day * DAY, project=world.project_id)
        sweeper.sweep(NOW + day * DAY + timedelta(hours=2))
    about = [m.kind for m in notices.messages if m.resource_id == sid]
    assert about == ["action_held"]
    assert world.shelves(sid) == 0
    (t,) = [t for t in world.store.timers_for("server", sid) if t.rule == "shelve"]
    assert t.state == "pending" and [e.outcome for e in t.history].count("held") == 1
