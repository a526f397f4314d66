"""The re-check before an action: given a timer and the live resource, act or not. Pure.

Every rule fails closed: anything that does not positively confirm the timer's condition
means no action now. A resource that no longer exists closes the timer as gone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from reclaim.models.glance import ImagePayload
from reclaim.models.neutron import SecurityGroupRule
from reclaim.policy.acceptable_use import eol_since, exposed_ports
from reclaim.settings import PolicySettings
from reclaim.timers import Timer

if TYPE_CHECKING:
    from reclaim.sweeper.cloud import ImageSnapshot, ProjectSnapshot

#: Nova's API status for each vm_state the policy names.
STATUS_OF_VM_STATE = {
    "active": "ACTIVE",
    "stopped": "SHUTOFF",
    "suspended": "SUSPENDED",
    "paused": "PAUSED",
    "shelved": "SHELVED",
    "shelved_offloaded": "SHELVED_OFFLOADED",
}
SHELVED_STATUSES = frozenset({"SHELVED", "SHELVED_OFFLOADED"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


@dataclass(frozen=True)
class ServerSnapshot:
    """What the re-check needs from a live server (built from openstacksdk's Server)."""

    id: str
    status: str
    project_id: str | None
    updated_at: datetime | None
    locked: bool | None
    metadata: dict[str, str] = field(default_factory=dict)
    vm_state: str | None = None
    task_state: str | None = None


@dataclass(frozen=True)
class Decision:
    """The outcome of a re-check.

    * ``act``: the rule still holds, do the action;
    * ``done``: the action's goal already holds (a retry after a crash), close as done;
    * ``skip``: the rule no longer holds, close the timer as skipped (``report``: tell operators);
    * ``gone``: the resource no longer exists, close as gone;
    * ``wait``: cannot tell now (busy, incomplete read), leave pending and try later.
    """

    kind: Literal["act", "done", "skip", "gone", "wait"]
    reason: str = ""
    report: bool = False


ACT = Decision("act", "rule still holds")
GONE = Decision("gone", "resource no longer exists")


def is_exempt_server(server: ServerSnapshot, policy: PolicySettings) -> str | None:
    """Why the server is exempt (configured list, project, metadata key), else None."""
    if server.id in policy.exempt_servers:
        return "server is in the configured exemption list"
    if server.project_id is not None and server.project_id in policy.exempt_projects:
        return f"project {server.project_id} is in the configured exemption list"
    flag = server.metadata.get(policy.exempt_metadata_key)
    if flag is not None and flag.strip().lower() not in _FALSE:
        return f"server metadata {policy.exempt_metadata_key}={flag}"
    return None


def _common(timer: Timer, server: ServerSnapshot | None, policy: PolicySettings) -> Decision | None:
    """Checks shared by every server action, in order; None when all pass."""
    if server is None:
        return GONE
    if server.id != timer.resource_id:
        return Decision("wait", f"read returned server {server.id}, not {timer.resource_id}")
    exempt = is_exempt_server(server, policy)
    if exempt:
        return Decision("skip", f"exempt: {exempt}")
    if server.project_id is None:
        return Decision("wait", "live server has no project id (incomplete read)")
    if timer.project_id is not None and server.project_id != timer.project_id:
        return Decision(
            "skip",
            f"owner changed: project {server.project_id}, timer set for {timer.project_id}",
            report=True,
        )
    return None


def _unchanged_since(timer: Timer, server: ServerSnapshot, allowance: timedelta) -> Decision | None:
    if server.locked is None:
        return Decision("wait", "live server does not say whether it is locked")
    if server.locked:
        return Decision("skip", "server is locked", report=True)
    if server.updated_at is None or timer.since is None:
        return Decision("wait", "no updated_at or timer start to compare (incomplete read)")
    if server.updated_at > timer.since + allowance:
        return Decision(
            "skip",
            f"server changed at {server.updated_at.isoformat()}, after the timer's start "
            f"{timer.since.isoformat()}",
        )
    return None


def decide_shelve(
    timer: Timer,
    server: ServerSnapshot | None,
    policy: PolicySettings,
    *,
    tolerance: timedelta = timedelta(seconds=5),
) -> Decision:
    """Shelve only if still stopped/suspended (per ``policy.shelve_states``) since the timer's
    start, not exempt, not locked, same owner."""
    early = _common(timer, server, policy)
    if early is not None:
        return early
    assert server is not None
    if server.status in SHELVED_STATUSES:
        return Decision("done", f"already {server.status}")
    if server.task_state:
        return Decision("wait", f"task {server.task_state} in progress")
    allowed = {STATUS_OF_VM_STATE.get(s, s.upper()) for s in policy.shelve_states}
    if server.status not in allowed:
        return Decision("skip", f"status {server.status}, not {'/'.join(sorted(allowed))}")
    if server.vm_state is not None and server.vm_state not in policy.shelve_states:
        return Decision(
            "skip", f"vm_state {server.vm_state}, not in {sorted(policy.shelve_states)}"
        )
    changed = _unchanged_since(timer, server, tolerance)
    return changed or ACT


def decide_delete(
    timer: Timer,
    server: ServerSnapshot | None,
    policy: PolicySettings,
    *,
    tolerance: timedelta = timedelta(seconds=5),
    offload_grace: timedelta = timedelta(days=1),
) -> Decision:
    """Delete only if still SHELVED/SHELVED_OFFLOADED for the whole period, not exempt, not
    locked, same owner. The offload after a shelve moves ``updated_at`` within
    ``offload_grace`` of the shelve without starting a new period."""
    early = _common(timer, server, policy)
    if early is not None:
        return early
    assert server is not None
    if server.task_state:
        return Decision("wait", f"task {server.task_state} in progress")
    if server.status not in SHELVED_STATUSES:
        return Decision("skip", f"status {server.status}, not SHELVED/SHELVED_OFFLOADED")
    allowance = offload_grace if server.status == "SHELVED_OFFLOADED" else tolerance
    changed = _unchanged_since(timer, server, allowance)
    return changed or ACT


def notice_hold(timer: Timer, now: datetime, lead: timedelta) -> datetime | None:
    """Until when a due action waits so that a notice goes out ``lead`` before it. Pure.

    The first notice of the run went out at its ``sent_at``, or goes out now when none has
    been sent yet and one is due. None: no hold (no notices in the spec, or the lead is
    over). A timer created late, whose notices and action fall due together, thus warns
    first and acts ``lead`` later instead of both at once.
    """
    if not timer.notices or lead <= timedelta(0):
        return None
    sent = [n.sent_at for n in timer.notices if n.sent_at is not None]
    if sent:
        first = min(sent)
    elif any(n.due_at <= now for n in timer.notices):
        first = now
    else:
        return None
    until = first + lead
    return until if until > now else None


_TRUE = frozenset({"1", "true", "yes", "on"})


def decide_cleanup(
    timer: Timer, project: ProjectSnapshot | None, policy: PolicySettings, *, mark: str = ""
) -> Decision:
    """Clean up only the timer's project, not exempt, and (with ``mark``) only while a tag or
    a true property of that name still says its allocation ended."""
    if project is None:
        return GONE
    if project.id != timer.resource_id:
        return Decision("wait", f"read returned project {project.id}, not {timer.resource_id}")
    if project.id in policy.exempt_projects:
        return Decision("skip", f"exempt: project {project.id} is in the configured list")
    if mark:
        flag = project.properties.get(mark, "").strip().lower()
        if mark not in project.tags and flag not in _TRUE:
            return Decision(
                "skip", f"project no longer carries {mark!r}: allocation not ended", report=True
            )
    return Decision("act", f"allocation ended; project {project.name or project.id} exists")


def owns_image(image: ImageSnapshot, owner_type: str, owner_id: str) -> bool:
    """Whether the image belongs to the owner (a project by ``owner``, a user by property)."""
    if owner_type == "project":
        return image.owner == owner_id
    return image.user_id == owner_id


def decide_image_delete(image: ImageSnapshot | None, owner_type: str, owner_id: str) -> Decision:
    """Delete one of a removed owner's images only while it is still theirs, still shared
    beyond the project, and not protected (a protected image is reported, never forced)."""
    if image is None:
        return GONE
    if not owns_image(image, owner_type, owner_id):
        return Decision("skip", f"image {image.id} no longer belongs to {owner_type} {owner_id}")
    if image.visibility not in ("shared", "community", "public"):
        return Decision("skip", f"image {image.id} is {image.visibility} now")
    if image.protected:
        return Decision("skip", f"image {image.id} is protected", report=True)
    return Decision("act", f"image {image.id} still {image.visibility}, owned by {owner_id}")


def decide_eol(image: ImageSnapshot | None, policy: PolicySettings, now: datetime) -> Decision:
    """Warn about an image only while it is still marked end-of-life (``policy``)."""
    if image is None:
        return GONE
    payload = ImagePayload(
        id=image.id,
        name=image.name,
        owner=image.owner,
        os_hidden=image.os_hidden,
        properties=dict(image.properties),
    )
    since = eol_since(payload, policy, now)
    if since is None or since > now:
        return Decision("skip", f"image {image.id} is no longer marked end-of-life")
    return Decision("act", f"image {image.id} marked end-of-life since {since.isoformat()}")


def decide_exposed(
    timer: Timer, rule: SecurityGroupRule | None, policy: PolicySettings
) -> Decision:
    """Warn about (or remove) a rule only while it still opens a listed port to the world."""
    if rule is None:
        return GONE
    if rule.id != timer.resource_id:
        return Decision("wait", f"read returned rule {rule.id}, not {timer.resource_id}")
    if rule.project_id is None:
        return Decision("wait", "live rule has no project id (incomplete read)")
    if timer.project_id is not None and rule.project_id != timer.project_id:
        return Decision("skip", f"owner changed: project {rule.project_id}", report=True)
    if rule.project_id in policy.exempt_projects:
        return Decision("skip", f"exempt: project {rule.project_id} is in the configured list")
    open_ = exposed_ports(rule, policy)
    if not open_:
        return Decision("skip", "rule no longer opens a listed port to the world")
    return Decision("act", "still open to the world: " + ", ".join(f"{s} {p}" for s, p in open_))
