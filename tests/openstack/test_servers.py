"""Servers end to end on a real cloud: Nova's own notifications on the real bus, ``reclaim
listen`` storing the timers, ``reclaim sweep`` at a future ``--now`` shelving and deleting
through real Nova, exempt and restarted servers left alone; the dry run counted on the
services' access logs; ``reclaim reconcile`` from the real APIs."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import kombu

from tests.openstack import harness
from tests.openstack.conftest import (
    AccessLog,
    Listener,
    boot,
    iso,
    mutating,
    reclaim,
    reclaim_json,
    server_status,
    sweep_delivered,
    timers,
    wait_for,
)


def actions_of(rows: list[dict[str, Any]], server_id: str) -> set[str]:
    return {r["action"] for r in rows if r["resource_id"] == server_id and r["action"] != "notify"}


def outcome(report: dict[str, Any], server_id: str, action: str) -> dict[str, Any]:
    found = [
        o for o in report["outcomes"] if o["resource_id"] == server_id and o["action"] == action
    ]
    assert found, json.dumps(report["outcomes"], indent=1)
    return dict(found[0])


def test_stopped_server_is_shelved_then_deleted_exempt_and_restarted_left_alone(
    cloud: harness.Run, admin: Any, listener: Listener, store_url: str
) -> None:
    stopped = boot(admin, "real-stopped")
    exempt = boot(admin, "real-exempt", metadata={"reclaim:exempt": "true"})
    restarted = boot(admin, "real-restarted")
    suspended = boot(admin, "real-suspended")
    for server in (stopped, exempt, restarted):
        admin.compute.stop_server(server)
    admin.compute.suspend_server(suspended)
    for server in (stopped, exempt, restarted):
        admin.compute.wait_for_server(server, status="SHUTOFF", wait=300, interval=1)
    admin.compute.wait_for_server(suspended, status="SUSPENDED", wait=300, interval=1)
    admin.compute.start_server(restarted)
    admin.compute.wait_for_server(restarted, status="ACTIVE", wait=300, interval=1)

    # Nova's own notifications reach the store through reclaim listen
    wait_for(
        lambda: (
            actions_of(timers(cloud, store_url), stopped.id)
            == actions_of(timers(cloud, store_url), suspended.id)
            == {"shelve"}
        )
    )
    rows = timers(cloud, store_url)
    assert not actions_of(rows, exempt.id)
    assert not actions_of(rows, restarted.id)

    # the notices go out first (7 d and 1 d before) and reach their people; the action
    # comes one full lead (7 d) after the first delivered one
    for after in (timedelta(days=7, hours=12), timedelta(days=13, hours=12)):
        notices = sweep_delivered(cloud, store_url, after)
        assert outcome(notices, stopped.id, "shelve")["result"] == "notified"
    report = reclaim_json(cloud, store_url, "sweep", "--now", iso(timedelta(days=14, hours=14)))
    for server in (stopped, suspended):
        shelve = outcome(report, server.id, "shelve")
        assert shelve["result"] == "done", shelve
        # the sweeper followed the asynchronous shelve to its end before it said done
        assert "Nova shows it SHELVED_OFFLOADED" in shelve["reason"]
        assert server_status(admin, server.id) == "SHELVED_OFFLOADED"
    shelve = outcome(report, stopped.id, "shelve")
    assert shelve["request_ids"], shelve  # the request ids sent to Nova, in the audit below
    assert server_status(admin, exempt.id) == "SHUTOFF"
    assert server_status(admin, restarted.id) == "ACTIVE"
    assert not any(o["resource_id"] in (exempt.id, restarted.id) for o in report["outcomes"])

    # Nova's shelve and offload notifications make the delete timer
    wait_for(lambda: actions_of(timers(cloud, store_url), stopped.id) == {"delete"})
    for days in (150, 173, 179):  # the notices 30, 7 and 1 d before
        sweep_delivered(cloud, store_url, timedelta(days=days, hours=12))
    report = reclaim_json(cloud, store_url, "sweep", "--now", iso(timedelta(days=180, hours=14)))
    assert outcome(report, stopped.id, "delete")["result"] == "done"
    wait_for(lambda: server_status(admin, stopped.id) is None, timeout=300)
    assert server_status(admin, exempt.id) == "SHUTOFF"
    assert server_status(admin, restarted.id) == "ACTIVE"
    audit = reclaim(cloud, store_url, "audit", "server", stopped.id)
    assert audit.returncode == 0, audit.stderr
    assert "shelve" in audit.stdout and "delete" in audit.stdout
    recorded = reclaim(cloud, store_url, "audit", "server", stopped.id, "--json")
    assert shelve["request_ids"][0] in recorded.stdout, recorded.stdout
    for server in (exempt, restarted):
        admin.compute.delete_server(server)


def capture(cloud: harness.Run, queue: str) -> kombu.Queue:
    """A queue of the test's own on the run's RabbitMQ, bound to Nova's two notification topics."""
    exchange = kombu.Exchange("nova", type="topic", durable=False)
    return kombu.Queue(
        queue,
        exchange=exchange,
        bindings=[
            kombu.binding(exchange, routing_key="notifications.info"),
            kombu.binding(exchange, routing_key="versioned_notifications.info"),
        ],
        durable=False,
        auto_delete=False,
    )


def test_both_notification_formats_of_real_nova_make_the_same_timer(
    cloud: harness.Run, admin: Any, store_url: str, tmp_path: Path
) -> None:
    queue = capture(cloud, f"capture-{tmp_path.name}")
    with kombu.Connection(cloud.transport_url.replace("rabbit:", "amqp:", 1)) as conn:
        queue(conn.channel()).declare()
        server = boot(admin, "real-formats")
        admin.compute.stop_server(server)
        admin.compute.wait_for_server(server, status="SHUTOFF", wait=300, interval=1)
        found: dict[str, Any] = {}

        def drain() -> bool:
            with conn.SimpleQueue(queue) as q:
                while True:
                    try:
                        message = q.get(timeout=1)
                    except q.Empty:
                        break
                    message.ack()
                    body = message.payload
                    inner = json.loads(body["oslo.message"]) if "oslo.message" in body else body
                    kind = inner.get("event_type")
                    if kind in ("compute.instance.power_off.end", "instance.power_off.end"):
                        found[kind] = body
            return len(found) == 2

        wait_for(drain, timeout=180)
        queue(conn.channel()).delete()
    for kind, body in found.items():
        path = tmp_path / f"{kind}.json"
        path.write_text(json.dumps(body))
        out = reclaim(cloud, store_url, "invoke", str(path))
        assert out.returncode == 0, out.stderr
        commands = json.loads(out.stdout)
        shelves = [c for c in commands if c.get("action") == "shelve" and c["op"] == "schedule"]
        assert [c["resource_id"] for c in shelves] == [server.id], (kind, commands)
    admin.compute.delete_server(server)


def test_dry_run_sends_no_mutating_request(
    cloud: harness.Run, admin: Any, listener: Listener, store_url: str
) -> None:
    server = boot(admin, "real-dry-run")
    admin.compute.stop_server(server)
    admin.compute.wait_for_server(server, status="SHUTOFF", wait=300, interval=1)
    wait_for(lambda: actions_of(timers(cloud, store_url), server.id) == {"shelve"})
    for after in (timedelta(days=7, hours=12), timedelta(days=13, hours=12)):
        notices = sweep_delivered(cloud, store_url, after)
        assert outcome(notices, server.id, "shelve")["result"] == "notified"
    log = AccessLog(cloud)
    report = reclaim_json(cloud, store_url, "sweep", "--dry-run", "--now", iso(timedelta(days=15)))
    assert outcome(report, server.id, "shelve")["result"] == "would-act"
    new = log.since()
    # the dry run read the cloud, as openstacksdk (what mutating() counts by)
    assert any("openstacksdk" in line for lines in new.values() for line in lines), new
    # Keystone's token requests are logins (POST /v3/auth/tokens), not changes to the cloud
    assert mutating(new) == []
    assert server_status(admin, server.id) == "SHUTOFF"
    admin.compute.delete_server(server)


def test_reconcile_repairs_lost_events_from_the_real_apis(
    cloud: harness.Run, admin: Any, store_url: str
) -> None:
    listener = Listener(cloud, store_url)
    try:
        restarted, deleted, kept = (boot(admin, f"real-reconcile-{n}") for n in "abc")
        for server in (restarted, deleted, kept):
            admin.compute.stop_server(server)
        for server in (restarted, deleted, kept):
            admin.compute.wait_for_server(server, status="SHUTOFF", wait=300, interval=1)
        wait_for(
            lambda: all(
                actions_of(timers(cloud, store_url), s.id) == {"shelve"}
                for s in (restarted, deleted, kept)
            )
        )
    finally:
        listener.stop()
    # from here on the events are lost: nothing listens
    admin.compute.start_server(restarted)
    admin.compute.delete_server(deleted)
    missed = boot(admin, "real-reconcile-d")
    admin.compute.stop_server(missed)
    admin.compute.wait_for_server(restarted, status="ACTIVE", wait=300, interval=1)
    admin.compute.wait_for_server(missed, status="SHUTOFF", wait=300, interval=1)
    wait_for(lambda: server_status(admin, deleted.id) is None, timeout=300)

    # a store the listener filled is no new installation: no first-install grace
    grace = {"RECLAIM_RECONCILE__FIRST_INSTALL_GRACE": "0d"}
    ours = {s.id for s in (restarted, deleted, kept, missed)}

    def drift(report: dict[str, Any]) -> set[tuple[str, str]]:
        """The drift reported for this test's servers (the cloud holds other tests' too)."""
        return {(r["resource_id"], r["change"]) for r in report["rows"] if r["resource_id"] in ours}

    # the drift is what was done while nobody listened, nothing more: the restart and the
    # deletion (Nova lists the deleted server as deleted) cancel, the missed stop creates
    done = {(restarted.id, "cancel"), (deleted.id, "cancel"), (missed.id, "create")}
    dry = reclaim_json(cloud, store_url, "reconcile", "--dry-run", **grace)
    assert drift(dry) == done, dry["rows"]
    assert actions_of(timers(cloud, store_url), missed.id) == set()  # the dry run wrote nothing
    report = reclaim_json(cloud, store_url, "reconcile", **grace)
    assert drift(report) == done, report["rows"]
    rows = timers(cloud, store_url)
    assert actions_of(rows, kept.id) == actions_of(rows, missed.id) == {"shelve"}
    assert not actions_of(rows, restarted.id) | actions_of(rows, deleted.id)
    # a second reconcile finds nothing more to repair
    assert drift(reclaim_json(cloud, store_url, "reconcile")) == set()
    for server in (restarted, kept, missed):
        admin.compute.delete_server(server)
