"""Project cleanup, image deletion, dependents' warnings, end-of-life and exposed-service
warnings, against the simulated cloud over HTTP (timers in moto)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from reclaim.commands import iso_z
from reclaim.mailer import Renderer
from reclaim.notices import NoticeMessage
from reclaim.policy.acceptable_use import (
    EOL_REMINDER,
    EOL_WARNING,
    EXPOSED_REMEDIATION,
    EXPOSED_SERVICE,
)
from reclaim.policy.projects import (
    DEPENDENTS_REMINDER,
    DEPENDENTS_WARNING,
    OWNER_IMAGES,
    PROJECT_CLEANUP,
)
from reclaim.settings import PolicySettings
from reclaim.store import DynamoTimerStore
from reclaim.sweeper import Breaker, OpenStackCloud, RecordingNotices, Sweeper
from reclaim.sweeper.cloud import ProjectGuard, cleanup_connector
from reclaim.timers import Timer
from reclaim_sim import Cloud, SimServer
from reclaim_sim.scenario import load_scenario
from tests.sweeper.conftest import FAST, NOW, World, make_sweeper

_n = itertools.count(1)
ENDED = NOW - timedelta(days=181)


def timer_of(store: DynamoTimerStore, rtype: str, rid: str, rule: str) -> Timer:
    (t,) = [t for t in store.timers_for(rtype, rid) if t.rule == rule]
    return t


@pytest.fixture
def cleaner(sim_server: SimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """reclaim's cleanup user: no role anywhere; a clouds.yaml entry ``sim-cleaner``."""
    name = f"reclaim-cleaner-{next(_n)}"
    user = sim_server.cloud.identity.create_user(name, password="cleaner-pw")
    path = tmp_path / "clouds.yaml"
    entry = sim_server.cloud_config(name, "admin", "cleaner-pw")
    path.write_text(yaml.safe_dump({"clouds": {"sim-cleaner": entry}}))
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))
    return user.id


def _seed_project(cloud: Cloud, tag: str) -> dict[str, str]:
    p, b = f"expired-{tag}", f"bystander-{tag}"
    return load_scenario(
        cloud,
        {
            "projects": [
                {
                    "name": p,
                    "tags": ["allocation-ended"],
                    "properties": {"allocation_end": iso_z(ENDED)},
                },
                {"name": b},
            ],
            "users": [{"name": f"u-{tag}", "roles": {p: "member"}}],
            "images": [
                {"name": f"{p}-img", "owner": p},
                {"name": f"{p}-community", "owner": p, "visibility": "community"},
                {"name": f"{p}-protected", "owner": p, "protected": True},
                {"name": f"{p}-hidden", "owner": p, "os_hidden": True},
            ],
            "networks": [{"name": f"{p}-net", "project": p, "cidr": "10.9.0.0/24"}],
            "routers": [
                {"name": f"{p}-router", "project": p, "external": True, "interfaces": [f"{p}-net"]},
                {"name": f"{b}-router", "project": b},
            ],
            "security_groups": [{"name": f"{p}-web", "project": p}],
            "volumes": [{"name": f"{p}-vol", "project": p, "size": 5}],
            "servers": [
                {"name": f"{p}-vm1", "project": p, "image": f"{p}-img", "network": f"{p}-net"},
                {"name": f"{p}-vm2", "project": p, "image": f"{p}-img", "state": "shelved"},
            ],
            "containers": [{"project": p, "name": "data", "objects": {"a.txt": "x"}}],
        },
    )


def _cleanup_timer(store: DynamoTimerStore, pid: str) -> None:
    store.apply(
        PROJECT_CLEANUP.schedule(
            pid,
            since=ENDED,
            delay=timedelta(days=180),
            event_time=ENDED,
            project_id=pid,
            detail={"allocation_id": "alloc-1"},
        )
    )


def _owned(cloud: Cloud, pid: str) -> dict[str, list[str]]:
    out = {
        "servers": [s.name for s in cloud.compute.servers.values() if s.project_id == pid],
        "volumes": [v.name for v in cloud.volume.volumes.values() if v.project_id == pid],
        "images": sorted(str(i.name) for i in cloud.image.images.values() if i.owner == pid),
        "containers": sorted(cloud.object_store.accounts.get(pid, {})),
    }
    for coll in ("networks", "routers", "ports"):
        out[coll] = [
            r.get("name") or r["device_owner"]
            for r in cloud.network.tables[coll].values()
            if r["project_id"] == pid
        ]
    return out


def test_project_cleanup_deletes_the_project_only_and_reports_leftovers(
    world: World, admin_conn: Any, cleaner: str
) -> None:
    cloud = world.cloud
    tag = str(next(_n))
    ids = _seed_project(cloud, tag)
    pid, bid = ids[f"project:expired-{tag}"], ids[f"project:bystander-{tag}"]
    _cleanup_timer(world.store, pid)
    port = OpenStackCloud(
        admin_conn, cleanup_connect=cleanup_connector("sim-cleaner"), cleanup_user_id=cleaner
    )
    notices = RecordingNotices()
    cloud.requests.clear()

    report = make_sweeper(world, port, notices, cleanup_mark="allocation-ended").sweep(NOW)

    (outcome,) = report.outcomes
    assert outcome.result == "done", outcome.reason
    p = f"expired-{tag}"
    assert _owned(cloud, pid) == {
        "servers": [],
        "volumes": [],
        "images": [f"{p}-hidden", f"{p}-protected"],
        "containers": [],
        "networks": [],
        "routers": [],
        "ports": [],
    }
    # the bystander's router survives, and no request changed anything of another project
    assert [r["name"] for r in cloud.network.routers.values() if r["project_id"] == bid] == [
        f"bystander-{tag}-router"
    ]
    changes = [r for r in cloud.requests.mutating_requests() if r.service != "identity"]
    assert changes and {r.project_id for r in changes} == {pid}
    # the member role was granted for the cleanup and taken back
    assert cloud.identity.roles_on(cleaner, pid) == set()
    kinds = notices.kinds()
    assert kinds.count("project_cleaned") == 1 and kinds.count("cleanup_leftovers") == 1
    # the summary counts the subnet and the router interface with the rest
    cleaned = next(m for m in notices.messages if m.kind == "project_cleaned")
    for gone in ("subnets 1", "router_interfaces 1", "networks 1", "routers 1"):
        assert gone in cleaned.detail["deleted"], (gone, cleaned.detail["deleted"])
    leftovers = next(m for m in notices.messages if m.kind == "cleanup_leftovers")
    assert f"{p}-hidden" in leftovers.detail["left_images"]
    assert f"{p}-protected" in leftovers.detail["left_images"]
    t = timer_of(world.store, "project", pid, "project-cleanup")
    assert t.state == "done" and t.history[-1].outcome == "done (leftovers)"
    assert "images" in t.history[-1].detail["leftovers"]


def test_cleanup_refuses_a_token_with_the_admin_role(
    world: World, admin_conn: Any, cleaner: str
) -> None:
    """The upstream router step deletes other projects' routers with an admin token: the
    adapter checks the token's roles and refuses before any change."""
    cloud = world.cloud
    tag = str(next(_n))
    ids = _seed_project(cloud, tag)
    pid, bid = ids[f"project:expired-{tag}"], ids[f"project:bystander-{tag}"]
    cloud.identity.grant(cleaner, pid, "admin")
    _cleanup_timer(world.store, pid)
    port = OpenStackCloud(admin_conn, cleanup_connect=cleanup_connector("sim-cleaner"))
    notices = RecordingNotices()
    cloud.requests.clear()

    report = make_sweeper(world, port, notices, max_attempts=1).sweep(NOW)

    assert [o.result for o in report.outcomes] == ["failed"]
    assert "admin role" in report.outcomes[0].reason
    assert cloud.requests.mutating_requests() == []
    assert len([r for r in cloud.network.routers.values() if r["project_id"] == bid]) == 1
    assert len(_owned(cloud, pid)["servers"]) == 2
    assert "action_failed" in notices.kinds()


def test_cleanup_dry_run_lists_and_changes_nothing(
    world: World, admin_conn: Any, cleaner: str
) -> None:
    cloud = world.cloud
    tag = str(next(_n))
    pid = _seed_project(cloud, tag)[f"project:expired-{tag}"]
    _cleanup_timer(world.store, pid)
    port = OpenStackCloud(admin_conn, cleanup_connect=cleanup_connector("sim-cleaner"))
    cloud.requests.clear()
    report = make_sweeper(world, port).sweep(NOW, dry_run=True)
    (o,) = report.outcomes
    assert o.result == "would-act"
    assert "servers 2" in o.reason and "routers 1" in o.reason
    assert cloud.requests.mutating_requests() == []
    assert timer_of(world.store, "project", pid, "project-cleanup").state == "pending"


def test_cleanup_holds_a_project_no_longer_marked_ended(
    world: World, admin_conn: Any, cleaner: str
) -> None:
    cloud = world.cloud
    tag = str(next(_n))
    pid = _seed_project(cloud, tag)[f"project:expired-{tag}"]
    cloud.identity.projects[pid].tags = []
    _cleanup_timer(world.store, pid)
    port = OpenStackCloud(admin_conn, cleanup_connect=cleanup_connector("sim-cleaner"))
    notices = RecordingNotices()
    cloud.requests.clear()
    report = make_sweeper(world, port, notices, cleanup_mark="allocation-ended").sweep(NOW)
    assert [o.result for o in report.outcomes] == ["held"]
    assert "does not carry 'allocation-ended'" in report.outcomes[0].reason
    assert cloud.requests.mutating_requests() == []
    assert notices.kinds() == ["cleanup_unconfirmed"]
    assert timer_of(world.store, "project", pid, "project-cleanup").state == "pending"


def _seed_exempt(cloud: Cloud, tag: str) -> tuple[str, dict[str, str]]:
    """An ended project with a server exempt by metadata (on its own network, router and
    volume), one the policy will list as exempt, and one to delete with its own network."""
    p = f"ended-{tag}"
    ids = load_scenario(
        cloud,
        {
            "projects": [
                {"name": p, "tags": ["allocation-ended"],
                 "properties": {"allocation_end": iso_z(ENDED)}},
            ],
            "images": [{"name": f"{p}-img", "owner": p}],
            "networks": [
                {"name": f"{p}-keep-net", "project": p, "cidr": "10.21.0.0/24"},
                {"name": f"{p}-other-net", "project": p, "cidr": "10.22.0.0/24"},
            ],
            "routers": [
                {"name": f"{p}-keep-router", "project": p, "interfaces": [f"{p}-keep-net"]},
                {"name": f"{p}-other-router", "project": p, "interfaces": [f"{p}-other-net"]},
            ],
            "volumes": [
                {"name": f"{p}-keep-vol", "project": p, "size": 5},
                {"name": f"{p}-other-vol", "project": p, "size": 5},
            ],
            "servers": [
                {"name": f"{p}-course", "project": p, "image": f"{p}-img",
                 "network": f"{p}-keep-net", "volumes": [f"{p}-keep-vol"],
                 "metadata": {"reclaim:exempt": "true"}},
                {"name": f"{p}-listed", "project": p, "image": f"{p}-img"},
                {"name": f"{p}-scratch", "project": p, "image": f"{p}-img",
                 "network": f"{p}-other-net"},
            ],
            "containers": [{"project": p, "name": "data", "objects": {"a.txt": "x"}}],
        },
    )  # fmt: skip
    return p, ids


def test_an_exempt_server_and_what_it_uses_survive_the_cleanup_of_its_ended_project(
    world: World, admin_conn: Any, cleaner: str
) -> None:
    """Exempt by metadata or by the configured list: the servers are kept with their volume,
    port, network, subnet and router; everything else goes; the audit and the notice say
    both, as read back from the cloud."""
    cloud = world.cloud
    p, ids = _seed_exempt(cloud, str(next(_n)))
    pid, listed = ids[f"project:{p}"], ids[f"server:{p}-listed"]
    _cleanup_timer(world.store, pid)
    port = OpenStackCloud(
        admin_conn, cleanup_connect=cleanup_connector("sim-cleaner"), cleanup_user_id=cleaner
    )
    notices = RecordingNotices()
    policy = PolicySettings(exempt_servers=frozenset({listed}))
    settings = FAST.model_copy(update={"cleanup_mark": "allocation-ended"})
    sweeper = Sweeper(world.store, port, notices, policy, "sweeper-a", settings)

    (outcome,) = sweeper.sweep(NOW).outcomes

    assert outcome.result == "done", outcome.reason
    owned = _owned(cloud, pid)
    assert sorted(owned["servers"]) == [f"{p}-course", f"{p}-listed"]
    assert owned["volumes"] == [f"{p}-keep-vol"]
    assert owned["networks"] == [f"{p}-keep-net"]
    assert owned["routers"] == [f"{p}-keep-router"]
    assert owned["images"] == [] and owned["containers"] == []
    keep_net = ids[f"network:{p}-keep-net"]
    assert all(
        r["network_id"] == keep_net for r in cloud.network.ports.values() if r["project_id"] == pid
    )
    assert [
        s["network_id"] for s in cloud.network.tables["subnets"].values() if s["project_id"] == pid
    ] == [keep_net]
    (cleaned,) = [m for m in notices.messages if m.kind == "project_cleaned"]
    assert "cleanup_leftovers" not in notices.kinds()
    for kept in (f"{p}-course", f"{p}-listed", f"{p}-keep-vol", f"{p}-keep-net",
                 f"{p}-keep-router"):  # fmt: skip
        assert kept in cleaned.detail["kept"], kept
    deleted = cleaned.detail["deleted"]
    for gone in ("servers 1", "volumes 1", "networks 1", "routers 1", "images 1", "containers 1"):
        assert gone in deleted, (gone, deleted)
    assert "reclaim:exempt=true" in cleaned.detail["exempt"]
    assert "configured exemption list" in cleaned.detail["exempt"]
    text = " ".join(Renderer().render(cleaned).text.split())  # unwrapped
    assert f"Deleted: {deleted}" in text and f"{p}-keep-vol" in text
    audit = timer_of(world.store, "project", pid, "project-cleanup").history[-1]
    assert audit.outcome == "done"
    assert f"{p}-scratch" in audit.detail["deleted_ids"] and f"{p}-course" in audit.detail["kept"]


def test_a_cleanup_dry_run_says_what_it_would_keep(
    world: World, admin_conn: Any, cleaner: str
) -> None:
    cloud = world.cloud
    p, ids = _seed_exempt(cloud, str(next(_n)))
    pid = ids[f"project:{p}"]
    _cleanup_timer(world.store, pid)
    port = OpenStackCloud(admin_conn, cleanup_connect=cleanup_connector("sim-cleaner"))
    cloud.requests.clear()
    (o,) = make_sweeper(world, port).sweep(NOW, dry_run=True).outcomes
    assert o.result == "would-act"
    assert "servers 2" in o.reason and "keep " in o.reason, o.reason
    kept = o.reason.split("; keep ", 1)[1]
    assert "servers 1" in kept and "volumes 1" in kept and "networks 1" in kept
    assert cloud.requests.mutating_requests() == []


def test_the_guard_refuses_other_projects_resources() -> None:
    class Router:
        def __init__(self, rid: str, project_id: str | None) -> None:
            self.id, self.project_id = rid, project_id

    guard = ProjectGuard("mine", known={"r-unlabelled"}, swift_account_ok=False)
    assert guard(Router("r1", "mine")) is True
    assert guard(Router("r2", "theirs")) is False
    assert guard(Router("r-unlabelled", None)) is True
    assert guard(Router("r-unknown", None)) is False
    assert guard.refused == ["Router:r2", "Router:r-unknown"]


# -- images ------------------------------------------------------------------------------
def _images(cloud: Cloud, owner: str, **extra: Any) -> dict[str, str]:
    out = {}
    for vis, protected in (
        ("shared", False),
        ("community", False),
        ("public", False),
        ("private", False),
        ("community", True),
    ):
        name = f"{vis}{'-protected' if protected else ''}"
        out[name] = cloud.image.create_image(
            owner=owner,
            name=name,
            visibility=vis,
            protected=protected,
            status="active",
            **extra,
        ).id
    return out


def _owner_timer(store: DynamoTimerStore, rtype: str, owner: str) -> None:
    rule = replace(OWNER_IMAGES, resource_type=rtype)  # type: ignore[arg-type]
    pid, uid = (owner, None) if rtype == "project" else (None, owner)
    store.apply(
        rule.schedule(
            owner,
            since=NOW - timedelta(days=31),
            delay=timedelta(days=30),
            event_time=NOW - timedelta(days=31),
            project_id=pid,
            user_id=uid,
        )
    )


def test_a_removed_projects_shared_images_are_deleted_protected_ones_kept(
    world: World, cloud_port: OpenStackCloud
) -> None:
    cloud = world.cloud
    owner = cloud.identity.create_project(f"gone-{next(_n)}").id
    imgs = _images(cloud, owner)
    cloud.identity.delete_project(owner)  # the owner is really gone; its images stay
    other = cloud.image.create_image(owner=world.project_id, name="x", visibility="community")
    _owner_timer(world.store, "project", owner)
    notices = RecordingNotices()

    report = make_sweeper(world, cloud_port, notices).sweep(NOW)

    assert [o.result for o in report.outcomes] == ["done"]
    left = {i.name for i in cloud.image.images.values() if i.owner == owner}
    assert left == {"private", "community-protected"}
    assert other.id in cloud.image.images
    (deleted,) = [m for m in notices.messages if m.kind == "images_deleted"]
    assert {imgs["shared"], imgs["community"], imgs["public"]} == {
        e.split(" ")[0] for e in deleted.detail["images"].split(",")
    }
    assert deleted.detail["kept_protected"] == imgs["community-protected"]
    assert "action_skipped" in notices.kinds()


def test_a_removed_users_images_are_found_by_property(
    world: World, cloud_port: OpenStackCloud
) -> None:
    cloud = world.cloud
    uid = f"user-{next(_n)}"
    mine = cloud.image.create_image(
        owner=world.project_id,
        name="snap",
        visibility="community",
        status="active",
        properties={"user_id": uid},
    )
    colleague = cloud.image.create_image(
        owner=world.project_id,
        name="theirs",
        visibility="community",
        status="active",
        properties={"user_id": "someone-else"},
    )
    _owner_timer(world.store, "user", uid)
    report = make_sweeper(world, cloud_port).sweep(NOW)
    assert [o.result for o in report.outcomes] == ["done"]
    assert mine.id not in cloud.image.images
    assert colleague.id in cloud.image.images


def test_image_deletion_counts_against_the_cap(world: World, cloud_port: OpenStackCloud) -> None:
    cloud = world.cloud
    owner = cloud.identity.create_project(f"gone-{next(_n)}").id
    for i in range(3):
        cloud.image.create_image(owner=owner, name=f"c{i}", visibility="community")
    cloud.identity.delete_project(owner)
    _owner_timer(world.store, "project", owner)
    sweeper = make_sweeper(world, cloud_port, max_actions=2)
    report = sweeper.sweep(NOW)
    assert [o.result for o in report.outcomes] == ["blocked"]
    assert len([i for i in cloud.image.images.values() if i.owner == owner]) == 1
    assert Breaker(world.store).status().open
    t = timer_of(world.store, "project", owner, "owner-images")
    assert t.state == "pending" and t.history[-1].outcome == "partial"
    Breaker(world.store).reset(NOW, "operator")
    assert [o.result for o in sweeper.sweep(NOW + timedelta(hours=1)).outcomes] == ["done"]
    assert [i for i in cloud.image.images.values() if i.owner == owner] == []


def test_dependents_of_a_leaving_owners_images_are_each_told_once(
    world: World, cloud_port: OpenStackCloud
) -> None:
    cloud = world.cloud
    tag = next(_n)
    ids = load_scenario(
        cloud,
        {
            "projects": [{"name": f"owner-{tag}"}, {"name": f"a-{tag}"}, {"name": f"m-{tag}"}],
            "users": [
                {"name": f"alice-{tag}", "roles": {f"a-{tag}": "member"}},
                {"name": f"olga-{tag}", "roles": {f"owner-{tag}": "member"}},
            ],
            "images": [
                {"name": f"comm-{tag}", "owner": f"owner-{tag}", "visibility": "community"},
                {
                    "name": f"shared-{tag}",
                    "owner": f"owner-{tag}",
                    "visibility": "shared",
                    "members": [f"m-{tag}"],
                },
            ],
            "servers": [
                {"name": f"a1-{tag}", "project": f"a-{tag}", "image": f"comm-{tag}"},
                {"name": f"a2-{tag}", "project": f"a-{tag}", "image": f"comm-{tag}"},
                {"name": f"own-{tag}", "project": f"owner-{tag}", "image": f"comm-{tag}"},
            ],
        },
    )
    owner = ids[f"project:owner-{tag}"]
    cloud.identity.delete_project(owner)  # the owner left Keystone
    goes = NOW + timedelta(days=30)
    world.store.apply(
        DEPENDENTS_WARNING.schedule(
            owner,
            since=NOW,
            delay=timedelta(0),
            event_time=NOW,
            project_id=owner,
            detail={"images_go_at": iso_z(goes)},
        )
    )
    notices = RecordingNotices()
    cloud.requests.clear()
    report = make_sweeper(world, cloud_port, notices).sweep(NOW)

    assert [o.result for o in report.outcomes] == ["done"]
    assert cloud.requests.mutating_requests() == []
    told = sorted(
        (m.resource_id, m.project_id, m.user_id, m.detail["servers"])
        for m in notices.messages
        if m.kind == "image_going_away"
    )
    a1, a2 = sorted([ids[f"server:a1-{tag}"], ids[f"server:a2-{tag}"]])
    assert told == sorted(
        [
            (
                ids[f"image:comm-{tag}"],
                ids[f"project:a-{tag}"],
                ids[f"user:alice-{tag}"],
                f"{a1},{a2}",
            ),
            (ids[f"image:shared-{tag}"], ids[f"project:m-{tag}"], None, ""),
        ]
    )
    first = next(m for m in notices.messages if m.kind == "image_going_away")
    assert first.due_at == goes
    assert "openstack image save" in first.detail["keep_a_copy"]
    assert "server image create" in first.detail["keep_a_copy"]
    again = make_sweeper(world, cloud_port, notices).sweep(NOW + timedelta(hours=1))
    assert again.outcomes == []


# -- end-of-life images, exposed services ------------------------------------------------
def _eol_timer(store: DynamoTimerStore, image_id: str, owner: str) -> None:
    store.apply(
        EOL_WARNING.schedule(
            image_id,
            since=NOW,
            delay=timedelta(0),
            event_time=NOW,
            project_id=owner,
            detail={"eol_at": iso_z(NOW)},
        )
    )


def test_users_of_an_end_of_life_image_are_warned(world: World, cloud_port: OpenStackCloud) -> None:
    cloud = world.cloud
    image = cloud.image.create_image(
        owner=cloud.admin_project_id, name="centos7", visibility="public", os_hidden=True
    )
    s1 = world.server("active", image_id=image.id)
    s2 = world.server("active", image_id=image.id)
    _eol_timer(world.store, image.id, cloud.admin_project_id)
    notices = RecordingNotices()
    report = make_sweeper(world, cloud_port, notices).sweep(NOW)
    assert [o.result for o in report.outcomes] == ["done"]
    (warning,) = notices.messages
    assert (warning.kind, warning.project_id, warning.user_id) == (
        "eol_image",
        world.project_id,
        world.user_id,
    )
    assert warning.detail["servers"] == ",".join(sorted([s1, s2]))


def test_the_reminders_of_an_image_are_mails_of_their_own(
    world: World, cloud_port: OpenStackCloud
) -> None:
    """A warning's reminder is another notice (another id), so the mailer, which sends each
    notice id once per address, mails it; the same timer's notice keeps its id."""
    cloud = world.cloud
    owner = cloud.identity.create_project(f"owner-{id(world)}").id
    image = cloud.image.create_image(owner=owner, name="c7", visibility="community", os_hidden=True)
    world.server("active", image_id=image.id, project_id=world.project_id)
    for rule in (EOL_WARNING, EOL_REMINDER):
        world.store.apply(
            rule.schedule(
                image.id, since=NOW, delay=timedelta(days=30 if rule is EOL_REMINDER else 0),
                event_time=NOW, project_id=owner, detail={"eol_at": iso_z(NOW)},
            )
        )  # fmt: skip
    for rule in (DEPENDENTS_WARNING, DEPENDENTS_REMINDER):
        world.store.apply(
            rule.schedule(
                owner, since=NOW, delay=timedelta(days=23 if rule is DEPENDENTS_REMINDER else 0),
                event_time=NOW, project_id=owner,
                detail={"images_go_at": iso_z(NOW + timedelta(days=30))},
            )
        )  # fmt: skip
    notices = RecordingNotices()
    sweeper = make_sweeper(world, cloud_port, notices, trust_allocation_events=True)
    for day in (0, 23, 30):
        sweeper.sweep(NOW + timedelta(days=day))
    sent = [(m.kind, m.notice_id) for m in notices.messages if not m.operator]
    assert sorted(k for k, _ in sent) == ["eol_image"] * 2 + ["image_going_away"] * 2
    assert len({i for _, i in sent}) == 4
    (warning,) = [m for m in notices.messages if m.kind == "eol_image"][:1]
    assert NoticeMessage.model_validate(warning.payload()).notice_id == warning.notice_id


def test_an_image_no_longer_end_of_life_warns_nobody(
    world: World, cloud_port: OpenStackCloud
) -> None:
    cloud = world.cloud
    image = cloud.image.create_image(owner=cloud.admin_project_id, name="c8", visibility="public")
    world.server("active", image_id=image.id)
    _eol_timer(world.store, image.id, cloud.admin_project_id)
    notices = RecordingNotices()
    report = make_sweeper(world, cloud_port, notices).sweep(NOW)
    assert [o.result for o in report.outcomes] == ["skipped"]
    assert notices.messages == []


def _open_rule(world: World, prefix: str = "0.0.0.0/0") -> str:
    cloud = world.cloud
    sg = cloud.network.create_security_group(
        cloud.admin_ctx(), f"db-{next(_n)}", project_id=world.project_id
    )
    row = cloud.network.create_security_group_rule(
        cloud.admin_ctx(),
        sg["id"],
        direction="ingress",
        protocol="tcp",
        port_range_min=27017,
        port_range_max=27017,
        remote_ip_prefix=prefix,
    )
    return str(row["id"])


def _rule_timer(world: World, rule_id: str, remove: bool = False) -> None:
    rule = EXPOSED_REMEDIATION if remove else EXPOSED_SERVICE
    world.store.apply(
        rule.schedule(
            rule_id,
            since=NOW - timedelta(days=4),
            delay=timedelta(days=3) if remove else timedelta(0),
            event_time=NOW - timedelta(days=4),
            project_id=world.project_id,
        )
    )


def test_an_open_database_port_is_reported_then_removed(
    world: World, cloud_port: OpenStackCloud
) -> None:
    rid = _open_rule(world)
    _rule_timer(world, rid)
    _rule_timer(world, rid, remove=True)
    notices = RecordingNotices()
    report = make_sweeper(world, cloud_port, notices).sweep(NOW)
    assert sorted(o.result for o in report.outcomes) == ["done", "done"]
    assert sorted(notices.kinds()) == ["exposed_service", "rule_removed"]
    assert all(m.project_id == world.project_id for m in notices.messages)
    assert "MongoDB 27017" in notices.messages[0].detail["ports"]
    assert rid not in world.cloud.network.tables["security-group-rules"]


@pytest.mark.parametrize("change", ["narrowed", "deleted"])
def test_a_rule_closed_since_is_left_alone(
    world: World, cloud_port: OpenStackCloud, change: str
) -> None:
    rid = _open_rule(world, "10.0.0.0/8" if change == "narrowed" else "0.0.0.0/0")
    if change == "deleted":
        del world.cloud.network.tables["security-group-rules"][rid]
    _rule_timer(world, rid, remove=True)
    notices = RecordingNotices()
    world.cloud.requests.clear()
    report = make_sweeper(world, cloud_port, notices).sweep(NOW)
    assert [o.result for o in report.outcomes] == ["skipped" if change == "narrowed" else "gone"]
    assert world.mutations() == []
    assert notices.kinds() == []


def test_a_slow_cleanup_keeps_its_claim_and_a_second_sweeper_never_starts_it(
    world: World, admin_conn: Any, sim_server: SimServer, cleaner: str
) -> None:
    """Every deletion slowed down: the cleanup outlives its lease many times over; the
    heartbeat keeps the claim, so a second sweeper that comes along finds it leased."""
    import threading
    import time

    cloud = world.cloud
    tag = str(next(_n))
    pid = _seed_project(cloud, tag)[f"project:expired-{tag}"]
    _cleanup_timer(world.store, pid)
    lease = timedelta(seconds=1)

    def sweeper(conn: Any, owner: str) -> Any:
        port = OpenStackCloud(
            conn, cleanup_connect=cleanup_connector("sim-cleaner"), cleanup_user_id=cleaner
        )
        return make_sweeper(world, port, owner=owner, lease=lease)

    first, second = sweeper(admin_conn, "sweeper-a"), sweeper(sim_server.connect(), "sweeper-b")
    cloud.requests.clear()
    cloud.faults.add(method="DELETE", status=None, delay=0.4)
    started = time.monotonic()
    reports: list[Any] = []
    thread = threading.Thread(target=lambda: reports.append(first.sweep(NOW)))
    thread.start()
    deadline = started + 120
    while len(cloud.requests.filter(method="DELETE")) < 5:  # well past the first lease
        assert time.monotonic() < deadline and thread.is_alive(), "the cleanup never started"
        time.sleep(0.05)
    late = second.sweep(NOW + timedelta(seconds=time.monotonic() - started))
    thread.join(timeout=180)
    assert not thread.is_alive()

    assert [o.result for o in late.outcomes] == ["leased"], late.outcomes
    assert "claimed by sweeper-a" in late.outcomes[0].reason
    assert [o.result for o in reports[0].outcomes] == ["done"]
    deleted = [r.path for r in cloud.requests.filter(method="DELETE") if r.status < 300]
    assert len(deleted) == len(set(deleted)), "a resource was deleted twice"
    t = timer_of(world.store, "project", pid, "project-cleanup")
    assert [e.outcome for e in t.history].count("done (leftovers)") == 1
    assert {e.detail.get("by") for e in t.history} == {"sweeper-a"}
