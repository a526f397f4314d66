"""Each timer action: what to re-read, how to decide, what to do, and whom to tell.

``recheck`` reads the live state (failing closed: any read error raises
:class:`~reclaim.sweeper.cloud.CloudError`) and decides with the pure rules; ``perform``
acts on what the re-check read and returns the notices to publish once the action is done.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reclaim.durations import format_duration
from reclaim.settings import PolicySettings, SweepSettings
from reclaim.sweeper.cloud import (
    ActionResult,
    CloudError,
    CloudPort,
    ServerRef,
    split_spared,
)
from reclaim.sweeper.notices import (
    ACTION_SKIPPED,
    NoticeMessage,
    NoticePort,
    about,
    dedupe_key,
    operator_alert,
)
from reclaim.sweeper.rules import (
    Decision,
    ImageSnapshot,
    allocation_record,
    decide_cleanup,
    decide_delete,
    decide_eol,
    decide_exposed,
    decide_image_delete,
    decide_shelve,
    is_exempt_server,
    unconfirmed,
)
from reclaim.timers import Timer

#: Actions that change or remove people's resources (capped, blocked by the breaker).
DESTRUCTIVE = frozenset({"shelve", "delete", "cleanup", "delete_images", "delete_rule"})
#: Actions that only tell people something (never capped).
WARNINGS = frozenset({"scan_dependents", "warn_eol", "warn_exposed"})
SUPPORTED = DESTRUCTIVE | WARNINGS

#: Notice kinds published after an action, and to operators.
SHELVED = "shelved"
DELETED = "deleted"
PROJECT_CLEANED = "project_cleaned"
IMAGES_DELETED = "images_deleted"
RULE_REMOVED = "rule_removed"
IMAGE_GOING_AWAY = "image_going_away"
EOL_IMAGE = "eol_image"
EXPOSED_SERVICE = "exposed_service"
CLEANUP_LEFTOVERS = "cleanup_leftovers"

KEEP_A_COPY = (
    "To keep using it, make your own copy before then: snapshot a server booted from it "
    "(openstack server image create --name my-copy SERVER), or download the image "
    "(openstack image save --file my-copy.img {image}) and upload it to your project "
    "(openstack image create --file my-copy.img my-copy)."
)
MIGRATE = (
    "Plan to move your work to a server built from a supported release of the operating "
    "system; the image will leave the featured set and stop receiving updates."
)


@dataclass(frozen=True)
class Context:
    """What an action may use: the cloud, settings, the sweep's time, and the caps."""

    cloud: CloudPort
    notices: NoticePort
    policy: PolicySettings
    settings: SweepSettings
    now: datetime
    #: count one more destructive action against the caps; False when a cap is reached
    reserve: Callable[[Timer], bool]
    #: how an action waits for the cloud to finish what it started (a shelve)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    #: the Keystone project property holding the allocation's end date
    end_property: str = "allocation_end"


@dataclass(frozen=True)
class Done:
    """An action that went through: request ids, notices to publish, audit detail.

    ``partial``: a cap stopped it part way; the timer stays pending for the rest.
    """

    request_ids: tuple[str, ...] = ()
    gone: bool = False
    messages: tuple[NoticeMessage, ...] = ()
    detail: dict[str, str] = field(default_factory=dict)
    summary: str = ""
    outcome: str = "done"
    partial: bool = False


def _server_notice(timer: Timer, kind: str, reason: str) -> NoticeMessage:
    name = timer.detail.get("name", "")
    how = (
        f"Unshelve it to use it again: openstack server unshelve {timer.resource_id}"
        if kind == SHELVED
        else "The server and its disk are gone."
    )
    return NoticeMessage(
        kind=kind,
        **about(timer),
        delay=timer.delay,
        detail={"name": name, "why": reason, "what_now": how},
    )


def completion_notices(timer: Timer, reason: str) -> list[NoticeMessage]:
    """The owner's notice that a shelve or delete happened (one per completed run)."""
    if timer.action == "shelve":
        return [_server_notice(timer, SHELVED, reason)]
    if timer.action == "delete":
        return [_server_notice(timer, DELETED, reason)]
    return []


# -- re-checks ---------------------------------------------------------------------------
def recheck(ctx: Context, timer: Timer) -> tuple[Decision, Any]:
    """Read the live state the timer's action depends on, and decide. Raises CloudError."""
    a, rid, s = timer.action, timer.resource_id, ctx.settings
    cloud = ctx.cloud
    if a == "shelve":
        server = cloud.server(rid)
        return decide_shelve(timer, server, ctx.policy, tolerance=s.change_tolerance), server
    if a == "delete":
        server = cloud.server(rid)
        decision = decide_delete(
            timer,
            server,
            ctx.policy,
            tolerance=s.change_tolerance,
            offload_grace=s.offload_grace,
        )
        return decision, server
    if a == "cleanup":
        if timer.resource_type != "project":
            return Decision("skip", f"cleanup of a {timer.resource_type}", report=True), None
        project = cloud.project(rid)
        decision = decide_cleanup(
            timer,
            project,
            ctx.policy,
            ctx.now,
            end_property=ctx.end_property,
            mark=s.cleanup_mark,
            trust_events=s.trust_allocation_events,
        )
        return decision, project
    if a in ("delete_images", "scan_dependents"):
        if timer.resource_type not in ("project", "user"):
            return Decision("skip", f"{a} of a {timer.resource_type}", report=True), None
        if timer.resource_type == "project" and rid in ctx.policy.exempt_projects:
            return Decision("skip", f"exempt: project {rid} is in the configured list"), None
        held = _owner_still_there(ctx, timer)
        if held is not None:
            return held, None
        images = cloud.owner_images(timer.resource_type, rid)
        if not images:
            return Decision("done", "the owner has no shared, community or public image"), images
        return Decision("act", f"{len(images)} shared/community/public image(s)"), images
    if a == "warn_eol":
        image = cloud.image(rid)
        return decide_eol(image, ctx.policy, ctx.now), image
    if a in ("warn_exposed", "delete_rule"):
        rule = cloud.security_group_rule(rid)
        return decide_exposed(timer, rule, ctx.policy), rule
    return Decision("wait", f"no re-check for action {a}"), None


def _owner_still_there(ctx: Context, timer: Timer) -> Decision | None:
    """Hold an image-owner rule while Keystone still has its owner: a user or project must
    really be gone, or (a project's dependents scan after its allocation ended) Keystone
    must confirm that the allocation ended. None: the owner is gone (or confirmed ended)."""
    rid = timer.resource_id
    if timer.resource_type == "user":
        if not ctx.cloud.user_exists(rid):
            return None
        return Decision("hold", f"held: user {rid} still exists in Keystone", report=True)
    project = ctx.cloud.project(rid)
    if project is None:
        return None
    if timer.action == "scan_dependents":
        ended, says = allocation_record(
            project, ctx.now, end_property=ctx.end_property, mark=ctx.settings.cleanup_mark
        )
        if ended or (ended is None and ctx.settings.trust_allocation_events):
            return None
        return unconfirmed(says)
    return Decision("hold", f"held: project {rid} still exists in Keystone", report=True)


def preview(ctx: Context, timer: Timer, live: Any) -> str:
    """What the action would do, for a dry run (reads only)."""
    if timer.action == "cleanup":
        inventory = ctx.cloud.project_inventory(timer.resource_id)
        spared = ctx.cloud.spared(timer.resource_id, _exemption(ctx))
        kept, rest = split_spared(inventory, spared.ids)
        total = sum(len(v) for v in rest.values())
        out = f"would delete {total} resource(s): {_counts(rest)}"
        if kept:
            out += f"; keep {_counts(kept)} (exempt servers and what they use)"
        return out + " (Swift not listed in a dry run)"
    if timer.action == "delete_images":
        images: list[ImageSnapshot] = live
        protected = sum(1 for i in images if i.protected)
        return f"would delete {len(images) - protected} image(s), keep {protected} protected"
    if timer.action == "scan_dependents":
        return f"would warn the dependents of {len(live)} image(s)"
    return f"would {timer.action}"


# -- actions -----------------------------------------------------------------------------
def perform(ctx: Context, timer: Timer, live: Any) -> Done:
    """Carry out the (re-checked) action. Raises CloudError when a call fails."""
    a = timer.action
    if a == "shelve":
        r = ctx.cloud.shelve_server(timer.resource_id)
        if r.gone:
            return Done(r.request_ids, gone=True)
        status = _await_shelved(ctx, timer.resource_id, r)
        return Done(
            r.request_ids,
            messages=(_server_notice(timer, SHELVED, a),),
            detail={"status": status},
            summary=f"Nova shows it {status}",
        )
    if a == "delete":
        r = ctx.cloud.delete_server(timer.resource_id)
        return Done(r.request_ids, r.gone, (_server_notice(timer, DELETED, a),))
    if a == "cleanup":
        return _cleanup(ctx, timer)
    if a == "delete_images":
        return _delete_images(ctx, timer, live)
    if a == "scan_dependents":
        return _scan_dependents(ctx, timer, live)
    if a == "warn_eol":
        return _warn_eol(ctx, timer, live)
    if a == "warn_exposed":
        return Done(messages=(_rule_notice(timer, live, EXPOSED_SERVICE, ctx),))
    if a == "delete_rule":
        r = ctx.cloud.delete_security_group_rule(timer.resource_id)
        return Done(r.request_ids, r.gone, (_rule_notice(timer, live, RULE_REMOVED, ctx),))
    raise ValueError(f"no action {a}")


def _exemption(ctx: Context) -> Callable[[Any], str | None]:
    """Why a server is exempt under the sweep's policy (None: it is not)."""
    return lambda server: is_exempt_server(server, ctx.policy)


def _counts(by_type: dict[str, list[str]]) -> str:
    """``servers 2, volumes 1``; ``nothing`` when empty."""
    return ", ".join(f"{k} {len(v)}" for k, v in sorted(by_type.items()) if v) or "nothing"


def _listed(by_type: dict[str, list[str]]) -> str:
    """``servers: id (name); volumes: id (name), id`` for a notice or an audit."""
    return "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(by_type.items()) if v)


#: How often a shelve in progress is looked at again (seconds).
SHELVE_POLL = 2.0


def _await_shelved(ctx: Context, server_id: str, started: ActionResult) -> str:
    """Follow a shelve Nova accepted (202) until Nova shows the server shelved: its status,
    or CloudError for a shelve that failed (ERROR, or back to its old state with no task)
    or did not finish within ``sweep.shelve_wait`` (transient: the next try re-checks)."""
    rid = started.request_ids[0] if started.request_ids else None
    deadline = ctx.clock() + ctx.settings.shelve_wait.total_seconds()
    while True:
        server = ctx.cloud.server(server_id)
        if server is None:
            raise CloudError(
                f"server {server_id} vanished while being shelved", transient=False, request_id=rid
            )
        if server.status == "SHELVED_OFFLOADED" or (
            server.status == "SHELVED" and not server.task_state
        ):
            return server.status
        if server.status == "ERROR" or not server.task_state:
            raise CloudError(
                f"shelve of server {server_id} failed: Nova shows it {server.status} "
                "with no task in progress",
                transient=False,
                request_id=rid,
            )
        if ctx.clock() >= deadline:
            raise CloudError(
                f"shelve of server {server_id} not finished after "
                f"{format_duration(ctx.settings.shelve_wait)}: {server.status}, task {server.task_state}",
                transient=True,
                request_id=rid,
            )
        ctx.sleep(SHELVE_POLL)


def _cleanup(ctx: Context, timer: Timer) -> Done:
    """Clean the project up, sparing exempt servers and what they use. The notice and the
    audit state what the cloud shows afterwards: deleted, kept, and left behind."""
    pid = timer.resource_id
    result = ctx.cloud.cleanup_project(pid, dry_run=False, exempt=_exemption(ctx))
    deleted = _counts(result.deleted)
    left = {k: v for k, v in result.leftovers.items() if v}
    kept = {k: v for k, v in result.kept.items() if v}
    exempt = "; ".join(f"{sid}: {why}" for sid, why in sorted(result.exempt.items()))
    cleaned = {
        **timer.detail,
        "deleted": deleted,
        "remaining": str(sum(len(v) for v in left.values())),
    }
    if kept:
        cleaned["kept"] = _listed(kept)
        cleaned["exempt"] = exempt
    if left:
        cleaned["left"] = _counts(left)
    messages = [
        NoticeMessage(
            kind=PROJECT_CLEANED,
            resource_type="project",
            resource_id=pid,
            project_id=pid,
            action="cleanup",
            due_at=timer.due_at,
            delay=timer.delay,
            clause=timer.clause,
            detail=cleaned,
        )
    ]
    detail = {"deleted": deleted, "granted_role": str(result.granted_role).lower()}
    if result.deleted:
        detail["deleted_ids"] = _listed(result.deleted)
    if kept:
        detail["kept"] = _listed(kept)
        detail["exempt"] = exempt
    if result.refused:
        detail["refused"] = ",".join(result.refused)
    if result.error:
        detail["error"] = result.error
    if result.skipped:
        detail["skipped"] = f"{', '.join(result.skipped)} (not in the cloud's catalog)"
    if result.detached:
        detail["detached"] = ", ".join(result.detached)
    if left:
        leftovers = {k: ",".join(v) for k, v in left.items()}
        detail["leftovers"] = "; ".join(f"{k}: {v}" for k, v in leftovers.items())
        messages.append(
            operator_alert(
                CLEANUP_LEFTOVERS,
                timer,
                f"project {pid} still owns {sum(len(v) for v in left.values())} resource(s) "
                "after cleanup",
                **{f"left_{k}": v for k, v in leftovers.items()},
                refused=",".join(result.refused),
            )
        )
    summary = f"deleted {deleted}"
    if result.skipped:
        summary += f"; skipped {detail['skipped']}"
    if kept:
        summary += f"; kept {_counts(kept)} (exempt)"
    if left:
        summary += f"; left {detail['leftovers']}"
    return Done(
        result.request_ids,
        messages=tuple(messages),
        detail=detail,
        summary=summary,
        outcome="done (leftovers)" if left else "done",
    )


def _delete_images(ctx: Context, timer: Timer, images: list[ImageSnapshot]) -> Done:
    owner_type, owner = timer.resource_type, timer.resource_id
    deleted: list[str] = []
    kept: list[str] = []
    rids: list[str] = []
    partial = False
    for n, listed in enumerate(images):
        image = ctx.cloud.image(listed.id)
        decision = decide_image_delete(image, owner_type, owner)
        if decision.kind != "act":
            if decision.report:
                kept.append(listed.id)
            continue
        if n and not ctx.reserve(timer):  # the first was counted before the action
            partial = True
            break
        r = ctx.cloud.delete_image(listed.id)
        rids.extend(r.request_ids)
        if not r.gone:
            deleted.append(f"{listed.id} ({listed.name})" if listed.name else listed.id)
    messages: list[NoticeMessage] = []
    if deleted:
        messages.append(
            NoticeMessage(
                kind=IMAGES_DELETED,
                **about(timer),
                detail={"images": ",".join(deleted), "kept_protected": ",".join(kept)},
            )
        )
    if kept:
        messages.append(
            operator_alert(
                ACTION_SKIPPED,
                timer,
                f"{len(kept)} protected image(s) kept",
                images=",".join(kept),
            )
        )
    return Done(
        tuple(rids),
        messages=tuple(messages),
        detail={"deleted": ",".join(deleted), "kept_protected": ",".join(kept)},
        summary=f"deleted {len(deleted)} image(s), kept {len(kept)} protected",
        partial=partial,
    )


def _images_go_at(timer: Timer) -> datetime | None:
    text = timer.detail.get("images_go_at")
    if not text:
        return timer.due_at
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return timer.due_at


def _scan_dependents(ctx: Context, timer: Timer, images: list[ImageSnapshot]) -> Done:
    """Every read first (fail closed), then one notice per dependent and image."""
    owner_type, owner = timer.resource_type, timer.resource_id
    found: list[tuple[ImageSnapshot, list[ServerRef], list[str]]] = []
    for image in images:
        servers = ctx.cloud.servers_from_image(image.id)
        members = ctx.cloud.image_members(image.id) if image.visibility == "shared" else []
        found.append((image, servers, members))
    goes = _images_go_at(timer)
    when = goes.isoformat() if goes else "when its owner's resources go"
    messages: list[NoticeMessage] = []
    for image, servers, members in found:
        by_user: dict[tuple[str | None, str | None], list[str]] = {}
        for srv in servers:
            if owner_type == "project" and srv.project_id == owner:
                continue
            if owner_type == "user" and srv.user_id == owner:
                continue
            by_user.setdefault((srv.project_id, srv.user_id), []).append(srv.id)
        told_projects = {p for p, _u in by_user}
        dependents: list[tuple[str | None, str | None, list[str], str]] = [
            (p, u, sorted(ids), "servers booted from it")
            for (p, u), ids in sorted(
                by_user.items(), key=lambda kv: (kv[0][0] or "", kv[0][1] or "")
            )
        ]
        for member in members:
            if member != owner and member not in told_projects:
                dependents.append((member, None, [], "member of the image"))
                told_projects.add(member)
        for project_id, user_id, server_ids, why in dependents:
            messages.append(
                _dependent_notice(
                    timer,
                    IMAGE_GOING_AWAY,
                    image.id,
                    (project_id, user_id),
                    action="delete_images",
                    due_at=goes,
                    detail={
                        "image_name": image.name,
                        "image_owner": f"{owner_type} {owner}",
                        "goes_at": when,
                        "why": f"its owner ({owner_type} {owner}) is losing access; you are "
                        f"told as a {why}",
                        "servers": ",".join(server_ids),
                        "server_names": server_names(servers, server_ids),
                        "keep_a_copy": KEEP_A_COPY.format(image=image.id),
                    },
                )
            )
    return Done(
        messages=tuple(messages),
        detail={"images": str(len(images)), "dependents_told": str(len(messages))},
        summary=f"{len(messages)} dependent notice(s) for {len(images)} image(s)",
    )


def _dependent_notice(
    timer: Timer,
    kind: str,
    image_id: str,
    whom: tuple[str | None, str | None],
    *,
    action: str,
    due_at: datetime | None,
    detail: dict[str, str],
) -> NoticeMessage:
    """One of the notices a warning timer sends about an image, to one dependent
    (``whom``: their project and user). Its dedupe key is the same on a republication and
    another for its reminder (a timer of its own), which the mailer would otherwise take
    for the warning already mailed."""
    project_id, user_id = whom
    parts = (dedupe_key(timer, kind, timer.due_at), image_id, project_id, user_id)
    return NoticeMessage(
        kind=kind,
        resource_type="image",
        resource_id=image_id,
        project_id=project_id,
        user_id=user_id,
        action=action,
        due_at=due_at,
        clause=timer.clause,
        detail=detail,
        dedupe_key="|".join(p or "-" for p in parts),
    )


def server_names(servers: list[ServerRef], ids: list[str]) -> str:
    """``detail.server_names`` of a notice listing ``ids``: a JSON object of id to name (the
    mails name servers, :func:`reclaim.notices.context.server_labels`)."""
    wanted = set(ids)
    return json.dumps({s.id: s.name for s in servers if s.id in wanted and s.name}, sort_keys=True)


def _warn_eol(ctx: Context, timer: Timer, image: ImageSnapshot) -> Done:
    servers = ctx.cloud.servers_from_image(image.id)
    by_owner: dict[tuple[str | None, str | None], list[str]] = {}
    for srv in servers:
        by_owner.setdefault((srv.project_id, srv.user_id), []).append(srv.id)
    messages = [
        _dependent_notice(
            timer,
            EOL_IMAGE,
            image.id,
            owner,
            action="warn_eol",
            due_at=None,
            detail={
                "image_name": image.name,
                "eol_at": timer.detail.get("eol_at", ""),
                **{k: timer.detail[k] for k in ("os_distro", "os_version") if k in timer.detail},
                "servers": ",".join(sorted(ids)),
                "server_names": server_names(servers, ids),
                "what_now": MIGRATE,
            },
        )
        for owner, ids in sorted(by_owner.items(), key=lambda kv: (kv[0][0] or "", kv[0][1] or ""))
    ]
    return Done(
        messages=tuple(messages),
        detail={"servers": str(len(servers)), "owners_told": str(len(messages))},
        summary=f"{len(messages)} owner(s) of {len(servers)} server(s) warned",
    )


def _rule_notice(timer: Timer, rule: Any, kind: str, ctx: Context) -> NoticeMessage:
    from reclaim.policy.acceptable_use import exposed_ports

    ports = ", ".join(f"{s} {p}" for s, p in exposed_ports(rule, ctx.policy))
    what_now = (
        "The rule was removed; allow only the addresses that need the service."
        if kind == RULE_REMOVED
        else "Limit the rule to the addresses that need the service, or remove it "
        f"(openstack security group rule delete {timer.resource_id})."
    )
    return NoticeMessage(
        kind=kind,
        resource_type="security_group_rule",
        resource_id=timer.resource_id,
        project_id=rule.project_id or timer.project_id,
        user_id=timer.user_id,
        action=timer.action,
        due_at=timer.due_at if kind != RULE_REMOVED else None,
        clause=timer.clause,
        detail={
            "security_group_id": rule.security_group_id or "",
            "remote_ip_prefix": rule.remote_ip_prefix or "any",
            "ports": ports,
            "what_now": what_now,
        },
    )
