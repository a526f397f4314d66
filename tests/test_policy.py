"""Every policy rule, as a user of the cloud would see its effect: what is scheduled, when."""

from __future__ import annotations

from datetime import timedelta

from reclaim import routes
from reclaim.commands import TimerCommand
from reclaim.policy.projects import OWNER_IMAGES, PROJECT_CLEANUP
from reclaim.policy.servers import DELETE_SHELVED, SHELVE
from reclaim.settings import PolicySettings
from tests.support.builders import SERVER, T0, days, event, server_event

POLICY = PolicySettings()
PROJECT = "b2e1d3c5f7a94d1f8e6a0b1c2d3e4f5a"


def decide(n: object, policy: PolicySettings = POLICY) -> list[TimerCommand]:
    return routes.decide(n, policy)  # type: ignore[arg-type]


def scheduled(cmds: list[TimerCommand], action: str) -> list[TimerCommand]:
    return [c for c in cmds if c.op == "schedule" and c.action == action]


def cancelled_rules(cmds: list[TimerCommand]) -> set[str]:
    return {c.rule for c in cmds if c.op == "cancel"}


def test_stopped_server_is_shelved_after_14_days_with_notices_7_and_1_day_before() -> None:
    cmds = decide(server_event("stopped", T0))
    [shelve] = scheduled(cmds, "shelve")
    assert (shelve.resource_type, shelve.resource_id, shelve.due_at) == (
        "server",
        SERVER,
        T0 + days(14),
    )
    notices = scheduled(cmds, "notify")
    assert sorted(n.due_at for n in notices if n.due_at) == [T0 + days(7), T0 + days(13)]
    assert {n.notice for n in notices} == {"shelve_upcoming"}
    assert cancelled_rules(cmds) == {DELETE_SHELVED.id}
    assert shelve.project_id == "6f70656e737461636b20342065766572" and shelve.user_id == "fake"


def test_suspended_counts_like_stopped_and_the_state_set_is_configurable() -> None:
    assert scheduled(decide(server_event("suspended", T0)), "shelve")
    assert not scheduled(decide(server_event("paused", T0)), "shelve")
    paused_too = PolicySettings(
        shelve_states=frozenset({"stopped", "suspended", "paused"}), shelve_after="10d"
    )
    [shelve] = scheduled(decide(server_event("paused", T0), paused_too), "shelve")
    assert shelve.due_at == T0 + days(10)


def test_shelved_server_is_deleted_after_180_days_and_shelve_is_cancelled() -> None:
    for state in ("shelved", "shelved_offloaded"):
        cmds = decide(server_event(state, T0))
        [delete] = scheduled(cmds, "delete")
        assert delete.due_at == T0 + days(180)
        assert sorted(n.due_at for n in scheduled(cmds, "notify") if n.due_at) == [
            T0 + days(150), T0 + days(173), T0 + days(179)
        ]  # fmt: skip
        assert cancelled_rules(cmds) == {SHELVE.id}


def test_active_or_deleted_server_cancels_everything() -> None:
    for state in ("active", "deleted"):
        cmds = decide(server_event(state, T0))
        assert not scheduled(cmds, "shelve") and not scheduled(cmds, "delete")
        assert cancelled_rules(cmds) == {SHELVE.id, DELETE_SHELVED.id}


def test_instance_update_counts_like_the_action_events() -> None:
    from tests.support.samples import nova_sample, on_the_wire

    body = on_the_wire(nova_sample("instance-update.json"), "2026-03-01 10:00:00.000000")
    body["payload"]["nova_object.data"]["state"] = "stopped"
    n = routes.parse(body)
    [shelve] = scheduled(decide(n), "shelve")
    assert shelve.due_at == T0 + days(14)


def test_legacy_notifications_decide_the_same_as_versioned() -> None:
    from tests.conftest import load_event

    legacy = decide(routes.parse(load_event("nova-legacy/compute.instance.power_off.end")))
    versioned = decide(routes.parse(load_event("nova/instance.power_off.end")))
    strip = lambda cs: [(c.op, c.rule, c.action, c.notice, c.due_at, c.resource_id) for c in cs]  # noqa: E731
    assert strip(legacy) == strip(versioned)


def test_exempt_servers_get_no_timers() -> None:
    exempt = server_event("stopped", T0, metadata={"reclaim:exempt": "true"})
    cmds = decide(exempt)
    assert not [c for c in cmds if c.op == "schedule"]
    assert cancelled_rules(cmds) == {SHELVE.id, DELETE_SHELVED.id}
    not_exempt = server_event("stopped", T0, metadata={"reclaim:exempt": "false"})
    assert scheduled(decide(not_exempt), "shelve")
    listed = PolicySettings(exempt_servers=frozenset({SERVER}))
    assert not scheduled(decide(server_event("stopped", T0), listed), "shelve")
    other_key = PolicySettings(exempt_metadata_key="keep")
    assert not scheduled(
        decide(server_event("stopped", T0, metadata={"keep": "yes"}), other_key), "shelve"
    )


def test_allocation_ended_schedules_cleanup_180_days_after_the_end_date() -> None:
    end = T0 - days(3)
    n = event("allocation.ended", {"project_id": PROJECT, "end_date": end.isoformat(),
                                   "contacts": [{"email": "pi@example.edu"}]}, T0)  # fmt: skip
    cmds = decide(n)
    [cleanup] = scheduled(cmds, "cleanup")
    assert (cleanup.resource_type, cleanup.resource_id, cleanup.due_at) == (
        "project",
        PROJECT,
        end + days(180),
    )
    assert cleanup.detail["contacts"] == "pi@example.edu"
    notices = {(c.notice, c.due_at) for c in scheduled(cmds, "notify")}
    assert notices == {
        ("allocation_ended", end),
        ("cleanup_upcoming", end + days(150)),
        ("cleanup_upcoming", end + days(173)),
        ("cleanup_upcoming", end + days(179)),
    }
    scans = sorted(c.due_at for c in scheduled(cmds, "scan_dependents") if c.due_at)
    assert scans == [end, end + days(173)]  # now, and a reminder 7 days before the images go


def test_allocation_renewed_cancels_cleanup_and_warnings() -> None:
    cmds = decide(event("allocation.renewed", {"project_id": PROJECT}, T0))
    assert not scheduled(cmds, "cleanup")
    assert PROJECT_CLEANUP.id in cancelled_rules(cmds)
    assert {c.resource_id for c in cmds} == {PROJECT}


def test_nectar_restrict_event_counts_as_allocation_ended() -> None:
    n = event(
        "expiry.allocation.restrict",
        {"allocation": {"project_id": PROJECT, "end_date": "2026-02-01"}},
        T0,
        "AUDIT",
    )
    [cleanup] = scheduled(decide(n), "cleanup")
    assert cleanup.due_at == n.payload.end_date + days(180)


def test_exempt_project_gets_no_cleanup() -> None:
    n = event("allocation.ended", {"project_id": PROJECT, "end_date": T0.isoformat()}, T0)
    cmds = decide(n, PolicySettings(exempt_projects=frozenset({PROJECT})))
    assert not [c for c in cmds if c.op == "schedule"]


def test_owner_removed_warns_dependents_then_deletes_images_after_grace() -> None:
    for event_type, rtype in (
        ("identity.project.deleted", "project"),
        ("identity.user.deleted", "user"),
    ):
        cmds = decide(event(event_type, {"resource_info": "owner-1"}, T0))
        [delete] = scheduled(cmds, "delete_images")
        assert (delete.resource_type, delete.rule, delete.due_at) == (
            rtype,
            OWNER_IMAGES.id,
            T0 + days(30),
        )
        scans = sorted(c.due_at for c in scheduled(cmds, "scan_dependents") if c.due_at)
        assert scans == [T0, T0 + days(23)]
        assert {c.notice for c in scheduled(cmds, "notify")} == {"images_deletion_upcoming"}
    grace = PolicySettings(owner_removed_grace="60d")
    [delete] = scheduled(
        decide(event("identity.user.deleted", {"resource_info": "u"}, T0), grace), "delete_images"
    )
    assert delete.due_at == T0 + days(60)


def test_project_updated_does_nothing() -> None:
    assert decide(event("identity.project.updated", {"resource_info": PROJECT}, T0)) == []


def test_image_deleted_cancels_all_its_timers() -> None:
    [cmd] = decide(event("image.delete", {"id": "img-1", "owner": PROJECT, "deleted": True}, T0))
    assert (cmd.op, cmd.resource_type, cmd.resource_id, cmd.rule) == (
        "cancel",
        "image",
        "img-1",
        "*",
    )


def test_handlers_are_deterministic_for_a_redelivered_message() -> None:
    n = server_event("stopped", T0)
    assert decide(n) == decide(n)


def test_settings_durations_from_text() -> None:
    p = PolicySettings(shelve_after="1w", delete_notices=["1d", "30d", "7d", "7d"])
    assert p.shelve_after == timedelta(days=7)
    assert p.delete_notices == (days(30), days(7), days(1))
