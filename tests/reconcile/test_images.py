"""Reconcile of end-of-life image warnings against the simulated Glance."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from reclaim.reconcile.engine import reconcile
from reclaim.store import DynamoTimerStore, open_store
from reclaim.timers import AuditEntry, close
from reclaim_sim import RecordingSink, SimServer
from tests.reconcile.conftest import POLICY, deliver, pending

EOL_RULES = ("eol-image", "eol-image-reminder")


def _image(p: Any, **kwargs: Any) -> str:
    image = p.cloud.image.create_image(owner=p.project_id, name="old-os", status="active", **kwargs)
    return str(image.id)


def test_images_hidden_or_end_of_life_while_events_were_lost_get_their_warnings(
    sim_server: SimServer,
    admin_conn: Any,
    project_factory: Any,
    recorder: RecordingSink,
    moto_store: DynamoTimerStore,
) -> None:
    """A community image and a private one are hidden or marked end-of-life while the
    listener is down: the reconcile gives them the warnings the events would have."""
    cloud = sim_server.cloud
    p = project_factory()
    community = _image(p, visibility="community")
    private = _image(p, visibility="private")
    deliver(moto_store, recorder.all())
    cloud.clock.advance(timedelta(hours=2, microseconds=300_000))
    cloud.image.update(p.ctx, community, {"os_hidden": True})  # lost
    cloud.clock.advance(timedelta(hours=1))
    cloud.image.update(p.ctx, private, {"end_of_life": "true"})  # lost
    assert pending(moto_store, p.project_id) == {}
    uninterrupted = open_store(f"memory://images-all-{p.project_id}")
    deliver(uninterrupted, recorder.all())
    expected = pending(uninterrupted, p.project_id)
    assert set(expected) == {("image", i, r) for i in (community, private) for r in EOL_RULES}

    now = cloud.clock.now() + timedelta(minutes=5)
    report = reconcile(admin_conn, moto_store, POLICY, now, project=p.project_id)

    got = pending(moto_store, p.project_id)
    assert got.keys() == expected.keys()
    for key, (action, due, _) in expected.items():
        assert got[key][0] == action == "warn_eol"
        assert timedelta(0) <= got[key][1] - due < timedelta(seconds=1), key
    warning, reminder = (
        got[("image", community, "eol-image")],
        got[("image", community, "eol-image-reminder")],
    )
    assert warning[1] <= now  # the warning goes out at the next sweep
    assert reminder[1] - warning[1] == POLICY.eol_reminder_after
    assert report.images == 3  # with the project's first image, not end-of-life
    assert report.count("create") == 4
    rows = {(r.resource_id, r.rule): r for r in report.rows}
    assert rows[(community, "eol-image")].reason == "image is hidden; no pending warning"
    assert rows[(private, "eol-image")].reason == "image is end-of-life; no pending warning"
    assert {r.resource_type for r in report.rows} == {"image"}

    again = reconcile(
        admin_conn, moto_store, POLICY, now + timedelta(hours=1), project=p.project_id
    )
    assert (again.drift, again.written) == (0, 0)


def test_an_unhidden_image_loses_its_warnings_and_a_deleted_one_too(
    sim_server: SimServer,
    admin_conn: Any,
    project_factory: Any,
    recorder: RecordingSink,
    moto_store: DynamoTimerStore,
) -> None:
    cloud = sim_server.cloud
    p = project_factory()
    unhidden, deleted = _image(p, visibility="community"), _image(p, visibility="private")
    cloud.clock.advance(timedelta(hours=1))
    cloud.image.update(p.ctx, unhidden, {"os_hidden": True})
    cloud.image.update(p.ctx, deleted, {"os_hidden": True})
    deliver(moto_store, recorder.all())
    assert len(pending(moto_store, p.project_id)) == 4
    cloud.clock.advance(timedelta(days=2))
    cloud.image.update(p.ctx, unhidden, {"os_hidden": False})  # lost
    cloud.image.delete_quietly(deleted)  # gone without a word

    now = cloud.clock.now()
    report = reconcile(admin_conn, moto_store, POLICY, now, project=p.project_id)

    assert pending(moto_store, p.project_id) == {}
    assert report.count("cancel", "eol-image") == 2
    assert report.count("cancel", "eol-image-reminder") == 2
    reasons = {r.resource_id: r.reason for r in report.rows}
    assert reasons == {
        unhidden: "image is no longer hidden or end-of-life",
        deleted: "image no longer exists",
    }


def test_a_warning_already_given_is_not_given_again(
    sim_server: SimServer,
    admin_conn: Any,
    project_factory: Any,
    recorder: RecordingSink,
    moto_store: DynamoTimerStore,
) -> None:
    cloud = sim_server.cloud
    p = project_factory()
    image = _image(p, visibility="public")
    cloud.clock.advance(timedelta(hours=1))
    cloud.image.update(p.ctx, image, {"os_hidden": True})
    deliver(moto_store, recorder.all())
    (warning,) = [t for t in moto_store.timers_for("image", image) if t.rule == "eol-image"]
    sent = cloud.clock.now() + timedelta(minutes=1)
    assert moto_store.replace(warning, close(warning, "done", AuditEntry(at=sent, what="warned")))

    report = reconcile(
        admin_conn, moto_store, POLICY, sent + timedelta(days=1), project=p.project_id
    )

    assert report.drift == 0
    assert set(pending(moto_store, p.project_id)) == {("image", image, "eol-image-reminder")}
    (after,) = [t for t in moto_store.timers_for("image", image) if t.rule == "eol-image"]
    assert after.state == "done"
