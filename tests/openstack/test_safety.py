"""The README's "Sweeping safely" on the real services: what the sweeper leaves alone, holds,
stops at and retries, seen on real Nova, Keystone and RabbitMQ.

Claims and the tests that check them here (the rest: test_servers.py, test_cleanup.py,
test_owners.py):

- locked server held and reported once, the hold in the audit and ``reclaim plan``; an
  action whose notices reached nobody held with one ``notices_undelivered`` alert; exempt
  by ``policy.exempt_servers`` and ``policy.exempt_projects`` (set after the timers exist);
  a stale event (restarted or deleted while nobody listened) and a forged one: the live
  server decides, nobody is mailed, 404 closes the timer as gone
  -> test_the_live_server_decides_holds_and_exemptions
- caps per project and per sweep stop the sweep, alert, and keep the breaker open until
  ``reclaim breaker reset``; a dry run counts the caps (exit 3) and sends no mutating
  request; two sweepers at once act once; a notice the bus does not take fails, keeps its
  timer due and exits 1 -> test_caps_breaker_concurrent_sweepers_and_a_dead_bus
- a shelve Nova does not finish in ``sweep.shelve_wait`` (nova-compute hung) is not
  recorded done; after ``sweep.max_attempts`` the timer is failed with an ``action_failed``
  alert -> test_a_shelve_nova_never_finishes_fails_with_an_alert
- a cleanup Keystone does not confirm is held (no notice, nothing deleted, one
  ``cleanup_unconfirmed`` alert); an owner's images stay while Keystone still has the owner
  -> test_unconfirmed_allocation_end_and_forged_project_deletion_are_held
"""

from __future__ import annotations

import json
import subprocess
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from reclaim.store import open_store
from tests.conftest import load_event
from tests.openstack import harness
from tests.openstack.conftest import (
    RECLAIM,
    AccessLog,
    Listener,
    boot,
    iso,
    member_of,
    mutating,
    paused,
    reclaim,
    reclaim_env,
    reclaim_json,
    server_status,
    sweep_delivered,
    timers,
    wait_for,
)
from tests.support.bus_tap import BusTap
from tests.support.delivery import record_delivered

OPERATOR_ONLY = {"action_held", "action_skipped", "notices_undelivered", "action_failed"}


def results(report: dict[str, Any]) -> dict[str, str]:
    """resource id -> result of the sweep's server actions (its notices aside)."""
    return {o["resource_id"]: o["result"] for o in report["outcomes"]}


def reasons(report: dict[str, Any]) -> dict[str, str]:
    return {o["resource_id"]: o["reason"] for o in report["outcomes"]}


def deliver(store_url: str, *resource_ids: str) -> None:
    """Record the sent notices of these resources' timers as delivered (as the mailer does
    for a mail the SMTP server accepted)."""
    store = open_store(store_url)
    for timer in store.pending():
        if timer.resource_id in resource_ids:
            record_delivered(store, timer)


def stop_all(admin: Any, servers: list[Any]) -> None:
    for server in servers:
        admin.compute.stop_server(server)
    for server in servers:
        admin.compute.wait_for_server(server, status="SHUTOFF", wait=300, interval=1)


def shelve_timers(cloud: harness.Run, store_url: str, ids: list[str]) -> bool:
    have = {(r["resource_id"], r["action"]) for r in timers(cloud, store_url)}
    return all((i, "shelve") in have for i in ids)


def forged_power_off(server: Any, path: Path) -> Path:
    """A versioned ``instance.power_off.end`` for ``server`` that Nova never sent (the server
    runs): the sample event with the server's ids and the current time."""
    body = load_event("nova/instance.power_off.end")
    message = json.loads(body["oslo.message"])
    data = message["payload"]["nova_object.data"]
    now = datetime.now(UTC)
    data.update(
        uuid=server.id,
        tenant_id=server.project_id,
        user_id=server.user_id,
        display_name=server.name,
        updated_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    message.update(
        message_id=str(uuid.uuid4()),
        timestamp=now.strftime("%Y-%m-%d %H:%M:%S.%f"),
        _context_project_id=server.project_id,
        _context_user_id=server.user_id,
    )
    body["oslo.message"] = json.dumps(message)
    path.write_text(json.dumps(body))
    return path


def test_the_live_server_decides_holds_and_exemptions(
    cloud: harness.Run, admin: Any, store_url: str, tap: BusTap, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    project, member = member_of(cloud, admin, f"exempt-project-{tag}")
    names = ("locked", "undelivered", "listed", "restarted", "deleted", "forged")
    s = {n: boot(admin, f"safety-{n}-{tag}") for n in names}
    s["in_exempt_project"] = boot(member, f"safety-project-{tag}")
    stopped = [v for k, v in s.items() if k != "forged"]
    listener = Listener(cloud, store_url)
    try:
        stop_all(admin, stopped)
        out = reclaim(
            cloud, store_url, "publish", str(forged_power_off(s["forged"], tmp_path / "f.json"))
        )
        assert out.returncode == 0, out.stderr
        wait_for(lambda: shelve_timers(cloud, store_url, [v.id for v in s.values()]))
    finally:
        listener.stop()
    # from here on nobody listens: these two changes reach the sweeper only through Nova
    admin.compute.start_server(s["restarted"])
    admin.compute.delete_server(s["deleted"])
    admin.compute.wait_for_server(s["restarted"], status="ACTIVE", wait=300, interval=1)
    wait_for(lambda: server_status(admin, s["deleted"].id) is None, timeout=300)
    # exemptions configured after the timers were made
    exempt = {
        "RECLAIM_POLICY__EXEMPT_SERVERS": json.dumps([s["listed"].id]),
        "RECLAIM_POLICY__EXEMPT_PROJECTS": json.dumps([project.id]),
    }

    first = reclaim_json(
        cloud, store_url, "sweep", "--now", iso(timedelta(days=7, hours=12)), **exempt
    )
    got = results(first)
    assert got[s["locked"].id] == got[s["undelivered"].id] == "notified", first
    assert got[s["listed"].id] == got[s["in_exempt_project"].id] == "skipped", first
    assert "exempt" in reasons(first)[s["listed"].id]
    assert got[s["restarted"].id] == "skipped", first  # ACTIVE: the live server decides
    assert got[s["forged"].id] == "skipped", first
    assert got[s["deleted"].id] == "gone", first  # Nova's 404 closes the timer
    deliver(store_url, s["locked"].id)  # the other's notices reach nobody
    reclaim_json(cloud, store_url, "sweep", "--now", iso(timedelta(days=13, hours=12)), **exempt)
    deliver(store_url, s["locked"].id)

    admin.compute.lock_server(s["locked"])
    action_at = timedelta(days=14, hours=14)
    acted = reclaim_json(cloud, store_url, "sweep", "--now", iso(action_at), **exempt)
    got = results(acted)
    assert got[s["locked"].id] == "held" and "server is locked" in reasons(acted)[s["locked"].id]
    assert got[s["undelivered"].id] == "held", acted
    # looked at again after sweep.recheck_held (1h): still held, nobody alerted twice
    again = reclaim_json(
        cloud, store_url, "sweep", "--now", iso(action_at + timedelta(hours=2)), **exempt
    )
    assert results(again)[s["locked"].id] == "held", again
    kinds = {n: tap.kinds(v.id) for n, v in s.items()}
    assert kinds["locked"].count("action_held") == 1, kinds["locked"]
    assert kinds["undelivered"].count("notices_undelivered") == 1, kinds["undelivered"]
    assert kinds["locked"].count("shelve_upcoming") == 2, kinds["locked"]
    for n in ("listed", "in_exempt_project", "restarted", "forged", "deleted"):
        # a stale, forged or exempt timer mails nobody
        assert not set(kinds[n]) - OPERATOR_ONLY, (n, kinds[n])
    # every hold is in the audit and in the plan
    audit = reclaim(cloud, store_url, "audit", "server", s["locked"].id)
    assert audit.returncode == 0 and "held: server is locked" in audit.stdout, audit.stdout
    plan = reclaim_json(cloud, store_url, "plan", "--now", iso(action_at), "--within", "30d")
    held = [r["what"] for r in plan if r["resource_id"] == s["locked"].id]
    assert any("shelve (held: server is locked)" in w for w in held), plan
    for n in ("locked", "undelivered", "listed", "in_exempt_project"):
        assert server_status(admin, s[n].id) == "SHUTOFF", n
    assert server_status(admin, s["restarted"].id) == "ACTIVE"
    assert server_status(admin, s["forged"].id) == "ACTIVE"
    admin.compute.unlock_server(s["locked"])
    for v in s.values():
        if v.id != s["deleted"].id:
            admin.compute.delete_server(v)


def test_caps_breaker_concurrent_sweepers_and_a_dead_bus(
    cloud: harness.Run, admin: Any, listener: Listener, store_url: str
) -> None:
    tag = uuid.uuid4().hex[:6]
    a, b, c = (boot(admin, f"caps-{n}-{tag}") for n in "abc")
    ids = [a.id, b.id, c.id]
    stop_all(admin, [a, b, c])
    wait_for(lambda: shelve_timers(cloud, store_url, ids))

    # a bus that does not take the notices: the sweep fails them and exits 1, the timers
    # stay due and the next sweep sends them
    dead = "rabbit://guest:guest@127.0.0.1:1/"
    env = reclaim_env(cloud, store_url, RECLAIM_BUS__TRANSPORT_URL=dead)
    first_notice = iso(timedelta(days=7, hours=12))
    out = reclaim(cloud, store_url, "sweep", "--now", first_notice, "--json", env=env)
    assert out.returncode == 1, out.stderr
    failed = json.loads(out.stdout)
    assert failed["notices_failed"] >= 3, failed
    assert not {r for i, r in results(failed).items() if i in ids} & {"notified", "done"}
    sweep_delivered(cloud, store_url, timedelta(days=7, hours=12))
    sweep_delivered(cloud, store_url, timedelta(days=13, hours=12))
    action_at = iso(timedelta(days=14, hours=14))

    # a dry run counts the caps and says where a real sweep would stop, changing nothing
    log = AccessLog(cloud)
    out = reclaim(cloud, store_url, "sweep", "--dry-run", "--max-actions", "1", "--now", action_at)
    assert out.returncode == 3, out.stdout + out.stderr
    assert "a real sweep would stop here" in out.stdout
    assert mutating(log.since()) == []

    # the per-project cap: one action, the sweep stops, the breaker stays open
    capped = reclaim_json(
        cloud, store_url, "sweep", "--now", action_at, RECLAIM_SWEEP__MAX_ACTIONS_PER_PROJECT="1"
    )
    assert capped["stopped"] and capped["breaker_opened"] and capped["alerts"], capped
    done = [i for i, r in results(capped).items() if r == "done"]
    assert len(done) == 1, capped
    blocked = reclaim_json(cloud, store_url, "sweep", "--now", action_at)
    assert blocked["breaker_was_open"] and "done" not in results(blocked).values(), blocked
    assert sorted(server_status(admin, i) or "" for i in ids).count("SHUTOFF") == 2
    assert reclaim(cloud, store_url, "breaker", "reset").returncode == 0

    # the cap of one sweep (--max-actions), then two sweepers at once after a reset
    capped = reclaim_json(cloud, store_url, "sweep", "--now", action_at, "--max-actions", "1")
    assert capped["stopped"] and capped["breaker_opened"], capped
    done += [i for i, r in results(capped).items() if r == "done"]
    assert len(set(done)) == 2
    assert reclaim(cloud, store_url, "breaker", "reset").returncode == 0
    log = AccessLog(cloud)
    reports: list[dict[str, Any]] = []

    def sweep() -> None:
        reports.append(reclaim_json(cloud, store_url, "sweep", "--now", action_at))

    both = [threading.Thread(target=sweep) for _ in range(2)]
    for t in both:
        t.start()
    for t in both:
        t.join(600)
    (last,) = set(ids) - set(done)
    dones = [
        r for report in reports for i, r in results(report).items() if i == last and r == "done"
    ]
    assert len(dones) == 1, reports
    shelves = [ln for ln in mutating(log.since()) if f"/servers/{last}/action" in ln]
    assert len(shelves) == 1, shelves  # one shelve request reached Nova
    for i in ids:
        wait_for(lambda i=i: server_status(admin, i) == "SHELVED_OFFLOADED", timeout=300)  # type: ignore[misc]
        admin.compute.delete_server(i)


def test_a_shelve_nova_never_finishes_fails_with_an_alert(
    cloud: harness.Run, admin: Any, listener: Listener, store_url: str, tap: BusTap
) -> None:
    server = boot(admin, f"hung-{uuid.uuid4().hex[:6]}")
    stop_all(admin, [server])
    wait_for(lambda: shelve_timers(cloud, store_url, [server.id]))
    for days in (7, 13):
        sweep_delivered(cloud, store_url, timedelta(days=days, hours=12))
    extra = {"RECLAIM_SWEEP__SHELVE_WAIT": "5s", "RECLAIM_SWEEP__MAX_ATTEMPTS": "1"}
    with paused(cloud, "nova-compute"):  # Nova takes the shelve and never does it
        report = reclaim_json(
            cloud, store_url, "sweep", "--now", iso(timedelta(days=14, hours=14)), **extra
        )
    (outcome,) = [o for o in report["outcomes"] if o["resource_id"] == server.id]
    assert outcome["result"] == "failed", outcome
    assert "not finished after 5s" in outcome["reason"], outcome
    assert "action_failed" in tap.kinds(server.id)
    assert not [
        r
        for r in timers(cloud, store_url)
        if r["resource_id"] == server.id and r["action"] == "shelve"
    ]
    audit = reclaim(cloud, store_url, "audit", "server", server.id)
    assert "failed" in audit.stdout, audit.stdout
    # nova-compute back: Nova finishes what it took
    wait_for(lambda: server_status(admin, server.id) == "SHELVED_OFFLOADED", timeout=300)
    admin.compute.delete_server(server)


def test_a_crashed_sweepers_claim_expires_and_the_next_sweep_records_what_nova_did(
    cloud: harness.Run, admin: Any, store_url: str
) -> None:
    server = boot(admin, f"crash-{uuid.uuid4().hex[:6]}")
    listener = Listener(cloud, store_url)
    try:
        stop_all(admin, [server])
        wait_for(lambda: shelve_timers(cloud, store_url, [server.id]))
    finally:
        # nobody listens from here on: Nova's shelve notifications would close the timer
        # the dead sweeper holds; the next sweep must find out from Nova itself
        listener.stop()
    for days in (7, 13):
        sweep_delivered(cloud, store_url, timedelta(days=days, hours=12))
    at = datetime.now(UTC) + timedelta(days=14, hours=14)
    with paused(cloud, "nova-compute"):  # the shelve stays in progress while the sweeper dies
        proc = subprocess.Popen(
            [RECLAIM, "sweep", "--now", at.isoformat(), "--json"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=reclaim_env(cloud, store_url),
        )
        try:
            wait_for(lambda: admin.compute.get_server(server.id).task_state == "shelving")
        finally:
            proc.kill()
            proc.wait(60)
    wait_for(lambda: server_status(admin, server.id) == "SHELVED_OFFLOADED", timeout=300)
    # the dead sweeper's claim holds the timer until its lease (sweep.lease, 10m) ends
    early = reclaim_json(
        cloud, store_url, "sweep", "--now", (at + timedelta(minutes=1)).isoformat()
    )
    assert results(early).get(server.id) in (None, "leased"), early
    assert server_status(admin, server.id) == "SHELVED_OFFLOADED"
    late = reclaim_json(
        cloud, store_url, "sweep", "--now", (at + timedelta(minutes=15)).isoformat()
    )
    assert results(late).get(server.id) == "done", late
    assert "already SHELVED_OFFLOADED" in reasons(late)[server.id]


def test_a_read_that_fails_means_no_action(
    cloud: harness.Run, admin: Any, listener: Listener, store_url: str, tmp_path: Path
) -> None:
    server = boot(admin, f"unread-{uuid.uuid4().hex[:6]}")
    stop_all(admin, [server])
    wait_for(lambda: shelve_timers(cloud, store_url, [server.id]))
    for days in (7, 13):
        sweep_delivered(cloud, store_url, timedelta(days=days, hours=12))
    # the sweeper's cloud gives up on an API after 10 s
    clouds = json.loads(cloud.clouds_yaml.read_text())
    clouds["clouds"]["openstack-admin"]["api_timeout"] = 10
    (tmp_path / "clouds.yaml").write_text(json.dumps(clouds))
    env = {"OS_CLIENT_CONFIG_FILE": str(tmp_path / "clouds.yaml")}
    at = timedelta(days=14, hours=14)
    with paused(cloud, "nova-api"):  # Nova's API hangs: the re-check cannot read the server
        report = reclaim_json(cloud, store_url, "sweep", "--now", iso(at), **env)
    assert results(report)[server.id] in ("retry", "waiting"), report
    assert server_status(admin, server.id) == "SHUTOFF"
    assert [r for r in timers(cloud, store_url) if r["resource_id"] == server.id]
    # Nova back: a later sweep reads it and acts
    report = reclaim_json(cloud, store_url, "sweep", "--now", iso(at + timedelta(hours=2)), **env)
    assert results(report)[server.id] == "done", report
    assert server_status(admin, server.id) == "SHELVED_OFFLOADED"


def test_unconfirmed_allocation_end_and_forged_project_deletion_are_held(
    cloud: harness.Run, admin: Any, store_url: str, tap: BusTap, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    project, member = member_of(cloud, admin, f"unconfirmed-{tag}")
    server = boot(member, f"unconfirmed-vm-{tag}")
    image = member.image.create_image(
        name=f"unconfirmed-img-{tag}",
        data=b"u" * 64,
        disk_format="raw",
        container_format="bare",
        visibility="community",
    )
    # a project deletion Keystone never made (the project is there)
    forged = _forged_project_deleted(project.id, tmp_path / "deleted.json")
    listener = Listener(cloud, store_url)
    try:
        out = reclaim(cloud, store_url, "allocation", "end", project.id)
        assert out.returncode == 0, out.stderr
        out = reclaim(cloud, store_url, "publish", str(forged))
        assert out.returncode == 0, out.stderr
        wait_for(
            lambda: (
                {"cleanup", "delete_images"}
                <= {r["action"] for r in timers(cloud, store_url) if r["resource_id"] == project.id}
            )
        )
    finally:
        listener.stop()
    for days in (31, 150, 180):
        report = reclaim_json(
            cloud, store_url, "sweep", "--now", iso(timedelta(days=days, hours=14))
        )
        for o in report["outcomes"]:
            if o["resource_id"] == project.id and o["action"] in ("cleanup", "delete_images"):
                assert o["result"] in ("held", "leased"), o
    kinds = tap.kinds(project.id)
    assert kinds.count("cleanup_unconfirmed") == 1, kinds
    assert "action_held" in kinds, kinds  # the images: Keystone still has the project
    assert not {"cleanup_upcoming", "images_deleted", "project_cleaned"} & set(kinds), kinds
    assert admin.compute.get_server(server.id).status == "ACTIVE"
    assert admin.image.get_image(image.id).status == "active"
    admin.compute.delete_server(server)
    admin.image.delete_image(image)


def _forged_project_deleted(project_id: str, path: Path) -> Path:
    """Keystone's basic ``identity.project.deleted`` for a project it did not delete."""
    body = load_event("keystone/identity.project.deleted.basic")
    message = json.loads(body["oslo.message"])
    message["payload"]["resource_info"] = project_id
    message.update(
        message_id=str(uuid.uuid4()),
        timestamp=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
    )
    body["oslo.message"] = json.dumps(message)
    path.write_text(json.dumps(body))
    return path
