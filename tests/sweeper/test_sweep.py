"""The sweep against the simulated cloud over HTTP, with timers in moto (and dynalite)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest

from reclaim.bus.settings import BusSettings
from reclaim.mailer.ledger import MailLedger
from reclaim.mailer.render import Renderer
from reclaim.store import open_store
from reclaim.sweeper import Breaker, OpenStackCloud, OsloNotices, RecordingNotices, Sweeper
from reclaim.timers import Timer
from tests.support.dynalite import free_port
from tests.sweeper.conftest import NOW, STOPPED_AT, World, make_sweeper


def only(world: World, server_id: str, rule: str = "shelve") -> Timer:
    (t,) = [t for t in world.store.timers_for("server", server_id) if t.rule == rule]
    return t


def test_a_due_shelve_is_done_once_and_audited(world: World, cloud_port: OpenStackCloud) -> None:
    sid = world.server()
    world.timer(sid)
    notices = RecordingNotices()
    report = make_sweeper(world, cloud_port, notices).sweep(NOW)

    assert [(o.resource_id, o.result) for o in report.outcomes] == [(sid, "done")]
    assert world.cloud.compute.servers[sid].status in ("SHELVED", "SHELVED_OFFLOADED")
    assert world.shelves(sid) == 1
    t = only(world, sid)
    assert t.state == "done" and t.lease_owner is None
    last = t.history[-1]
    assert (last.what, last.outcome) == ("shelve", "done")
    assert last.detail["request_ids"].startswith("req-")
    assert "stopped or suspended" in last.detail["clause"] or last.detail["clause"]
    assert notices.kinds() == ["shelved"]  # its warnings went out on time, before NOW
    assert f"openstack server unshelve {sid}" in notices.messages[-1].detail["what_now"]

    again = make_sweeper(world, cloud_port, notices).sweep(NOW + timedelta(hours=1))
    assert again.outcomes == []
    assert world.shelves(sid) == 1
    assert len(notices.messages) == 1


def test_each_action_reaches_the_cloud_under_the_request_id_it_is_audited_with(
    world: World, cloud_port: OpenStackCloud
) -> None:
    """Operators match the audit to Nova's logs by global request id: with actions running
    in parallel, each shelve must carry its own id, and the re-check reads carry fresh ones."""
    sids = [world.server() for _ in range(12)]
    for sid in sids:
        world.timer(sid)
    report = make_sweeper(world, cloud_port, parallelism=4).sweep(NOW)
    assert sorted(o.resource_id for o in report.outcomes if o.result == "done") == sorted(sids)

    posts = world.cloud.requests.filter(method="POST", path_regex=r"/servers/[^/]+/action$")
    received = {r.path.split("/")[-2]: r.request_id for r in posts if r.status == 202}
    for sid in sids:
        audited = only(world, sid).history[-1].detail["request_ids"]
        assert received[sid] == audited
    reads = world.cloud.requests.filter(method="GET", path_regex=r"/servers/[^/]+$")
    ids = [r.request_id for r in reads] + list(received.values())
    assert len(reads) >= len(sids) and all(i and i.startswith("req-") for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_shelved_server_past_its_period_is_deleted(
    world: World, cloud_port: OpenStackCloud
) -> None:
    sid = world.server("shelved_offloaded")
    world.timer(sid, "delete-shelved")
    report = make_sweeper(world, cloud_port).sweep(NOW)
    assert [o.result for o in report.outcomes] == ["done"]
    assert sid not in world.cloud.compute.servers
    assert only(world, sid, "delete-shelved").state == "done"


def _start(w: World, sid: str) -> None:
    w.cloud.compute.action(w.cloud.admin_ctx(), sid, "os-start")


@pytest.mark.parametrize(
    ("change", "result", "state", "words"),
    [
        ("started", "skipped", "skipped", "status ACTIVE"),
        ("locked", "held", "pending", "locked"),
        ("exempt", "skipped", "skipped", "exempt"),
        ("touched", "restarted", "pending", "restarted: server changed at"),
        ("deleted", "gone", "gone", "no longer exists"),
        ("other-owner", "skipped", "skipped", "owner changed"),
    ],
)
def test_live_state_that_disagrees_means_no_action(
    world: World,
    cloud_port: OpenStackCloud,
    change: str,
    result: str,
    state: str,
    words: str,
) -> None:
    cloud, admin = world.cloud, world.cloud.admin_ctx()
    if change == "other-owner":
        other = cloud.identity.create_project(f"other-{id(world)}")
        sid = world.server(project_id=other.id)
    else:
        sid = world.server()
    world.timer(sid)
    if change == "started":
        cloud.compute.servers[sid].vm_state = "active"
    elif change == "locked":
        cloud.compute.servers[sid].locked = True
    elif change == "exempt":
        cloud.compute.servers[sid].metadata["reclaim:exempt"] = "true"
    elif change == "touched":
        cloud.compute.servers[sid].updated_at = STOPPED_AT + timedelta(days=3)
    elif change == "deleted":
        cloud.compute.delete(admin, sid)
    world.cloud.requests.clear()
    notices = RecordingNotices()

    report = make_sweeper(world, cloud_port, notices).sweep(NOW)

    assert world.mutations() == []
    (outcome,) = report.outcomes
    assert outcome.result == result
    assert words in outcome.reason
    t = only(world, sid)
    assert t.state == state
    assert words in t.history[-1].detail["why"]
    if change == "other-owner":
        assert "action_skipped" in notices.kinds()
    if change == "locked":
        assert notices.kinds() == ["action_held"]


def test_a_dry_run_makes_no_mutating_request_and_writes_nothing(
    world: World, cloud_port: OpenStackCloud
) -> None:
    sids = [world.server() for _ in range(3)]
    for sid in sids:
        world.timer(sid)
    before = {sid: only(world, sid) for sid in sids}
    notices = RecordingNotices()
    world.cloud.requests.clear()

    report = make_sweeper(world, cloud_port, notices).sweep(NOW, dry_run=True)

    assert report.dry_run
    assert sorted(o.result for o in report.outcomes) == ["would-act"] * 3
    assert world.mutations() == []
    assert len(world.cloud.requests.filter(service="compute", method="GET")) >= 3
    assert {sid: only(world, sid) for sid in sids} == before
    assert notices.messages == []


def test_the_cap_stops_the_sweep_and_opens_the_breaker_until_reset(
    world: World, cloud_port: OpenStackCloud
) -> None:
    sids = [world.server() for _ in range(5)]
    for sid in sids:
        world.timer(sid)
    notices = RecordingNotices()
    sweeper = make_sweeper(world, cloud_port, notices, parallelism=1)

    report = sweeper.sweep(NOW, max_actions=3)

    done = [o.resource_id for o in report.outcomes if o.result == "done"]
    assert len(done) == 3
    assert sum(world.shelves(s) for s in sids) == 3
    assert report.breaker_opened and "cap of 3" in report.stopped
    assert "sweep_cap_reached" in notices.kinds()
    assert Breaker(world.store).status().open
    pending = [s for s in sids if only(world, s).state == "pending"]
    assert len(pending) == 2
    assert all(only(world, s).lease_owner is None for s in pending)

    blocked = sweeper.sweep(NOW + timedelta(minutes=1))
    assert {o.result for o in blocked.outcomes} == {"blocked"}
    assert sum(world.shelves(s) for s in sids) == 3

    Breaker(world.store).reset(NOW, "operator")
    resumed = sweeper.sweep(NOW + timedelta(minutes=2))
    assert sorted(o.result for o in resumed.outcomes) == ["done", "done"]
    assert all(world.shelves(s) == 1 for s in sids)


def test_the_per_project_cap_stops_the_sweep(world: World, cloud_port: OpenStackCloud) -> None:
    sids = [world.server() for _ in range(3)]
    for sid in sids:
        world.timer(sid)
    report = make_sweeper(world, cloud_port, max_actions_per_project=2, parallelism=1).sweep(NOW)
    assert [o.result for o in report.outcomes].count("done") == 2
    assert f"project {world.project_id}" in report.stopped
    assert Breaker(world.store).status().open


def test_notices_go_out_once_across_sweeps(world: World, cloud_port: OpenStackCloud) -> None:
    sid = world.server()
    # stopped 10 days ago: the 7-day notice (due 3 days ago) is due, the shelve is not
    world.timer(sid, since=NOW - timedelta(days=10), delivered=False)
    notices = RecordingNotices()
    sweeper = make_sweeper(world, cloud_port, notices)

    first = sweeper.sweep(NOW)
    second = sweeper.sweep(NOW + timedelta(hours=6))

    assert [o.result for o in first.outcomes] == ["notified"]
    assert second.outcomes == []
    assert notices.kinds() == ["shelve_upcoming"]
    # sent 3 days late, the notice restates the date: the whole 7 days from now
    assert notices.messages[0].due_at == NOW + timedelta(days=7)
    assert world.mutations() == []
    t = only(world, sid)
    assert t.state == "pending" and t.lease_until == NOW + timedelta(days=6)
    assert [n.sent_at is not None for n in t.notices] == [True, False]


def test_a_dry_run_says_which_notices_would_go_out_and_sends_none(
    world: World, cloud_port: OpenStackCloud
) -> None:
    sid = world.server()
    world.timer(sid, since=NOW - timedelta(days=10), delivered=False)  # the 7-day notice is due
    notices = RecordingNotices()

    dry = make_sweeper(world, cloud_port, notices).sweep(NOW, dry_run=True)

    assert [(o.result, o.notices) for o in dry.outcomes] == [("would-notify", ("shelve_upcoming",))]
    assert notices.messages == [] and [n.sent_at for n in only(world, sid).notices] == [None, None]
    real = make_sweeper(world, cloud_port, notices).sweep(NOW)
    assert [o.result for o in real.outcomes] == ["notified"] and notices.kinds() == [
        "shelve_upcoming"
    ]


def test_notices_the_bus_does_not_take_fail_fast_free_the_timer_and_are_reported(
    world: World, cloud_port: OpenStackCloud
) -> None:
    sid = world.server()
    world.timer(sid, since=NOW - timedelta(days=10), delivered=False)  # its 7-day notice is due
    down = OsloNotices(BusSettings(transport_url=f"rabbit://guest:guest@127.0.0.1:{free_port()}/"))

    started = time.monotonic()
    report = make_sweeper(world, cloud_port, down).sweep(NOW)

    assert time.monotonic() - started < 5, "a notice fails within seconds, it does not hang"
    assert [o.result for o in report.outcomes] == ["waiting"]
    assert "notice shelve_upcoming not sent" in report.outcomes[0].reason
    assert report.notices_sent() == 0 and report.notices_failed == 1
    assert "1 notice(s) not sent, their timers stay due" in report.alerts[-1]
    t = only(world, sid)
    assert t.state == "pending" and t.lease_owner is None, "the claim is released at once"
    assert [n.sent_at for n in t.notices] == [None, None]
    # another sweeper need not wait for a lease: the notice goes out on the next sweep
    notices = RecordingNotices()
    again = make_sweeper(world, cloud_port, notices, owner="sweeper-b").sweep(NOW)
    assert [o.result for o in again.outcomes] == ["notified"]
    assert notices.kinds() == ["shelve_upcoming"]


def test_injected_503s_are_retried_then_done(world: World, cloud_port: OpenStackCloud) -> None:
    sid = world.server()
    world.timer(sid)
    world.cloud.faults.add(service="compute", method="POST", path_regex="/action", count=2)
    report = make_sweeper(world, cloud_port).sweep(NOW)
    assert [o.result for o in report.outcomes] == ["done"]
    assert world.shelves(sid) == 1
    assert only(world, sid).state == "done"


def test_a_timed_out_call_that_went_through_is_not_repeated(world: World, sim_server: Any) -> None:
    sid = world.server()
    world.timer(sid)
    conn = sim_server.connect(api_timeout=0.5)
    world.cloud.faults.add(
        service="compute", method="POST", path_regex="/action", status=None, delay=1.0, count=1
    )
    report = make_sweeper(world, OpenStackCloud(conn), retry_sleep=1.5).sweep(NOW)
    assert [o.result for o in report.outcomes] == ["done"]
    assert world.shelves(sid) == 1
    assert "already" in only(world, sid).history[-1].outcome


def test_persistent_failures_mark_the_timer_failed_and_alert(
    world: World, cloud_port: OpenStackCloud
) -> None:
    sid = world.server()
    world.timer(sid)
    rule = world.cloud.faults.add(service="compute", method="POST", path_regex="/action")
    notices = RecordingNotices()
    sweeper = make_sweeper(world, cloud_port, notices, max_attempts=4, tries_per_sweep=2)
    try:
        first = sweeper.sweep(NOW)
        assert [o.result for o in first.outcomes] == ["retry"]
        t = only(world, sid)
        assert t.state == "pending" and t.attempts == 2
        # backing off: the next sweep leaves it alone until the retry time
        assert [o.result for o in sweeper.sweep(NOW + timedelta(minutes=1)).outcomes] == ["leased"]
        later = sweeper.sweep(NOW + timedelta(hours=2))
        assert [o.result for o in later.outcomes] == ["failed"]
    finally:
        world.cloud.faults.remove(rule)
    t = only(world, sid)
    assert t.state == "failed" and t.attempts == 4
    assert "503" in t.history[-1].detail["why"]
    assert "action_failed" in notices.kinds()
    assert world.cloud.compute.servers[sid].status == "SHUTOFF"


def test_a_crashed_sweepers_claim_expires_and_the_next_sweep_finishes(
    world: World, cloud_port: OpenStackCloud
) -> None:
    sid = world.server()
    world.timer(sid)
    t = only(world, sid)
    # a sweeper claimed it, then died (kill -9) before acting
    world.store.replace(
        t, t.model_copy(update={"lease_owner": "dead", "lease_until": NOW + timedelta(minutes=10)})
    )
    sweeper = make_sweeper(world, cloud_port)
    assert [o.result for o in sweeper.sweep(NOW).outcomes] == ["leased"]
    assert world.shelves(sid) == 0
    report = sweeper.sweep(NOW + timedelta(minutes=11))
    assert [o.result for o in report.outcomes] == ["done"]
    assert world.shelves(sid) == 1


def test_a_crash_after_acting_completes_without_acting_again(
    world: World, cloud_port: OpenStackCloud
) -> None:
    sid = world.server()
    world.timer(sid)
    t = only(world, sid)
    world.store.replace(
        t, t.model_copy(update={"lease_owner": "dead", "lease_until": NOW + timedelta(minutes=10)})
    )
    cloud_port.shelve_server(sid)  # the dead sweeper's action went through
    report = make_sweeper(world, cloud_port).sweep(NOW + timedelta(minutes=11))
    assert [o.result for o in report.outcomes] == ["done"]
    assert world.shelves(sid) == 1
    assert only(world, sid).history[-1].outcome == "done (already)"


def _race(world: World, sim_server: Any, n: int, table_url: str) -> list[Any]:
    sids = [world.server() for _ in range(n)]
    for sid in sids:
        world.timer(sid, notices=False)  # the race is about claims, not warnings
    world.cloud.requests.clear()
    reports: list[Any] = []
    barrier = threading.Barrier(2)

    def run(owner: str) -> None:
        store = open_store(table_url)
        sweeper = Sweeper(
            store,
            OpenStackCloud(sim_server.connect()),
            RecordingNotices(),
            make_sweeper(world, None).policy,
            owner,
            make_sweeper(world, None, parallelism=8, max_actions_per_project=10_000).settings,
        )
        barrier.wait()
        reports.append(sweeper.sweep(NOW, max_actions=10_000))

    threads = [threading.Thread(target=run, args=(o,)) for o in ("a", "b")]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert all(world.shelves(s) == 1 for s in sids)
    assert all(only(world, s).state == "done" for s in sids)
    return reports


def test_two_concurrent_sweepers_act_exactly_once(world: World, sim_server: Any) -> None:
    reports = _race(world, sim_server, 200, f"memory://{world.store.table}")
    done = sum(o.result == "done" for r in reports for o in r.outcomes)
    assert done == 200


@pytest.mark.dynalite
def test_two_concurrent_sweepers_on_dynalite_act_exactly_once(
    world: World, sim_server: Any, dynalite: Any
) -> None:
    url = f"{dynalite.url}/race-{id(world)}"
    world.store = open_store(url)
    reports = _race(world, sim_server, 60, url)
    assert sum(o.result == "done" for r in reports for o in r.outcomes) == 60


def test_a_late_first_notice_gets_the_whole_warning_period_from_its_delivery(
    world: World, cloud_port: OpenStackCloud
) -> None:
    """Shelved 200 days ago, never warned: the delete waits 30 days after the first notice
    reached someone (it used to go a day later), and no notice states a date already past."""
    sid = world.server(state="shelved_offloaded")
    world.timer(sid, rule="delete", delivered=False)
    notices = RecordingNotices()
    sweeper = make_sweeper(world, cloud_port, notices, min_notice_lead=timedelta(days=1))
    ledger = MailLedger(world.store)

    first = sweeper.sweep(NOW)
    assert [o.result for o in first.outcomes] == ["notified"]
    (warning,) = notices.messages
    assert warning.kind == "delete_upcoming" and warning.due_at == NOW + timedelta(days=30)
    # the mailer delivers it two days late (an outage): the period counts from then
    ledger.record(warning.notice_id, "u@example.org", NOW + timedelta(days=2), kind="x",
                  outcome="sent")  # fmt: skip
    for day in (1, 23, 29):
        sweeper.sweep(NOW + timedelta(days=day))
    assert world.mutations() == []
    assert [m.kind for m in notices.messages] == ["delete_upcoming"] * 3
    assert all(m.due_at is not None and m.due_at >= NOW + timedelta(days=30)
               for m in notices.messages)  # fmt: skip
    held = sweeper.sweep(NOW + timedelta(days=31))
    assert [o.result for o in held.outcomes] == ["held"]
    assert "first notice delivered 2026-03-03 09:00, action not before 2026-04-02 09:00" in (
        held.outcomes[0].reason
    )
    assert world.mutations() == []
    assert [o.result for o in sweeper.sweep(NOW + timedelta(days=32, hours=1)).outcomes] == ["done"]
    assert world.cloud.compute.servers.get(sid) is None or world.mutations() != []


def test_a_late_notice_counts_its_days_from_its_publication(
    world: World, cloud_port: OpenStackCloud
) -> None:
    """Shelved 200 days ago, never warned: the mail sent today states the date 30 days ahead
    and "in 30 days" (it counted from the notice's original date: "in 196 days"); a mail
    rendered after its date says no count at all, never a negative one."""
    sid = world.server(state="shelved_offloaded")
    world.timer(sid, rule="delete", delivered=False)
    notices = RecordingNotices()
    make_sweeper(world, cloud_port, notices).sweep(NOW)
    (warning,) = notices.messages
    assert warning.published_at == NOW

    text = " ".join(Renderer(links=None).render(warning).text.split())
    assert "on Tuesday 31 March 2026 at 09:00 UTC, in 30 days." in text

    late = warning.model_copy(update={"published_at": NOW + timedelta(days=31)})
    text = " ".join(Renderer(links=None).render(late).text.split())
    assert "on Tuesday 31 March 2026 at 09:00 UTC. This cannot be undone." in text


def test_no_action_whose_notices_reached_nobody(world: World, cloud_port: OpenStackCloud) -> None:
    """Published is not delivered: with no mail accepted and no acknowledgement, the shelve
    is held, operators are told once, and it goes ahead once a delivery is recorded."""
    sid = world.server()
    world.timer(sid, delivered=False)
    notices = RecordingNotices()
    sweeper = make_sweeper(world, cloud_port, notices)
    for day in (0, 6, 7, 8, 9):
        sweeper.sweep(NOW + timedelta(days=day, minutes=1))
    assert world.shelves(sid) == 0
    assert notices.kinds() == ["shelve_upcoming", "shelve_upcoming", "notices_undelivered"]
    t = only(world, sid)
    assert t.state == "pending"
    assert [e.outcome for e in t.history].count("held") == 1
    first = notices.messages[0]
    MailLedger(world.store).acknowledge(first.notice_id, "portal", NOW + timedelta(days=9))
    assert [o.result for o in sweeper.sweep(NOW + timedelta(days=16, hours=1)).outcomes] == ["done"]
    assert world.shelves(sid) == 1


@pytest.mark.slow
def test_two_sweepers_over_1000_due_timers_act_exactly_once(world: World, sim_server: Any) -> None:
    reports = _race(world, sim_server, 1000, f"memory://{world.store.table}")
    assert sum(o.result == "done" for r in reports for o in r.outcomes) == 1000
    assert all(r.outcomes for r in reports)  # both did part of the work


def test_the_report_counts_what_went_on_the_bus(world: World, cloud_port: OpenStackCloud) -> None:
    """The summary agrees with the bus: a finished action's notice counts as sent, an
    operator alert as an alert, and a dry run sends nothing (it says what would go out)."""
    done = world.server()
    world.timer(done)
    other = world.cloud.identity.create_project(f"other-{id(world)}")
    moved = world.server(project_id=other.id)
    world.timer(moved)  # its owner changed: skipped, and operators are told
    warned = world.server()
    world.timer(warned, since=NOW - timedelta(days=10), delivered=False)  # 7-day notice due
    notices = RecordingNotices()

    dry = make_sweeper(world, cloud_port, notices).sweep(NOW, dry_run=True)
    assert notices.messages == []
    assert (dry.notices_sent(), dry.alerts_sent(), dry.would_send()) == (0, 0, 1)
    assert not dry.published

    real = make_sweeper(world, cloud_port, notices).sweep(NOW)
    kinds = notices.kinds()
    assert sorted(kinds) == ["action_skipped", "shelve_upcoming", "shelved"]
    assert dict(real.published) == {k: 1 for k in kinds}
    assert (real.notices_sent(), real.alerts_sent(), real.would_send()) == (2, 1, 0)
