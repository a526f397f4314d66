"""The re-check before an action: given a timer and the live resource, act or not. Pure.

Every rule fails closed: anything that does not positively confirm the timer's condition
means no action now. A resource that no longer exists closes the timer as gone. A server
that changed after the timer's start but is still in the rule's state restarts the rule's
period from the change (:func:`restart_period`) rather than losing its timer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from reclaim.models.glance import ImagePayload
from reclaim.models.neutron import SecurityGroupRule
from reclaim.policy.acceptable_use import eol_since, exposed_ports
from reclaim.settings import PolicySettings
from reclaim.timers import MAX_OBSERVATIONS, Notice, Observation, Timer

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
#: Image properties that name the user who made an image (Nova snapshots, Jetstream).
USER_PROPERTIES = ("user_id", "owner_user_id")
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
class ProjectSnapshot:
    """What the cleanup re-check needs from a live Keystone project."""

    id: str
    name: str
    enabled: bool
    tags: tuple[str, ...] = ()
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageSnapshot:
    """What the image rules need from a live Glance image."""

    id: str
    name: str
    owner: str | None
    visibility: str
    protected: bool
    os_hidden: bool
    status: str = "active"
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def user_id(self) -> str | None:
        """The user who made the image, from its properties (None when unrecorded)."""
        for key in USER_PROPERTIES:
            if self.properties.get(key):
                return self.properties[key]
        return None


@dataclass(frozen=True)
class Decision:
    """The outcome of a re-check.

    * ``act``: the rule still holds, do the action;
    * ``done``: the action's goal already holds (a retry after a crash), close as done;
    * ``skip``: the rule no longer holds, close the timer as skipped (``report``: tell operators);
    * ``gone``: the resource no longer exists, close as gone;
    * ``wait``: cannot tell now (busy, incomplete read), leave pending and try later;
    * ``hold``: a reason that persists (allocation not confirmed, server locked): leave
      pending, tell operators once, look again later; the owner is not warned meanwhile;
    * ``restart``: the rule still applies but the resource changed at ``since``, after the
      timer's start: no action now, the rule's period starts again from ``since``
      (:func:`restart_period`).
    """

    kind: Literal["act", "done", "skip", "gone", "wait", "hold", "restart"]
    reason: str = ""
    report: bool = False
    since: datetime | None = None


ACT = Decision("act", "rule still holds")
GONE = Decision("gone", "resource no longer exists")
#: Why a project's cleanup and its dependents' scans wait: one cause, one operator alert.
UNCONFIRMED = "held: allocation not confirmed by Keystone"


def unconfirmed(says: str) -> Decision:
    """The hold of a project rule whose allocation end Keystone does not confirm
    (``says``: what Keystone's record says)."""
    return Decision("hold", f"{UNCONFIRMED} ({says})", report=True)


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
    """None when the server has not changed since the timer's start (within ``allowance``).

    Called once the server is known to be in a state the rule applies to. Nova moves
    ``updated_at`` on any change (a rename, a lock then unlock, metadata), so a change
    does not end the condition: it restarts the rule's period from the change.
    """
    if server.locked is None:
        return Decision("wait", "live server does not say whether it is locked")
    if server.locked:
        return Decision("hold", "held: server is locked", report=True)
    if server.updated_at is None or timer.since is None:
        return Decision("wait", "no updated_at or timer start to compare (incomplete read)")
    if server.updated_at > timer.since + allowance:
        return Decision(
            "restart",
            f"restarted: server changed at {server.updated_at.isoformat()}, after the "
            f"timer's start {timer.since.isoformat()}",
            since=server.updated_at,
        )
    return None


def restart_period(timer: Timer, changed: datetime) -> Timer:
    """The pending ``timer`` with its run restarted at ``changed``. Pure.

    As if the condition had begun at ``changed``: the start is ``changed``, the action due
    the rule's period (and any extension granted) after it, every notice to be given
    again for the new date, no failed attempt counted. The evidence matches, so that later
    events merge into it as into any run (:func:`reclaim.timers.merge`): the run is closed
    just before ``changed`` (an older event, redelivered, changes nothing) and holds one
    observation at ``changed``, besides any newer one. ``changed`` is after the timer's
    start, so the action is never due earlier than before.
    """
    if timer.state != "pending":
        raise ValueError(f"only a pending timer can restart, not a {timer.state} one")
    closed = changed - timedelta(microseconds=1)
    later = tuple(o for o in timer.observations if o.at > changed)
    observations = (Observation(at=changed, since=changed), *later[-(MAX_OBSERVATIONS - 1) :])
    due = changed + timer.delay + timer.extension
    return timer.model_copy(
        update={
            "observations": observations,
            "closed_at": max(closed, timer.closed_at) if timer.closed_at else closed,
            "since": changed,
            "due_at": due,
            "notices": tuple(
                Notice(kind=k, before=b, due_at=due - b) for k, b in timer.notice_spec
            ),
            "attempts": 0,
        }
    )


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


#: Notices that announce a rule's start rather than count down to its action (the cleanup's
#: ``allocation_ended``): they state the date but do not set the warning period.
ANNOUNCEMENTS = frozenset({"allocation_ended"})


def warning_lead(timer: Timer) -> timedelta:
    """The rule's longest notice lead: the warning period its first notice starts. Pure."""
    leads = [b for k, b in timer.notice_spec if k not in ANNOUNCEMENTS]
    return max(leads or [b for _k, b in timer.notice_spec], default=timedelta(0))


def _lead(timer: Timer, notice: Notice, floor: timedelta) -> timedelta:
    return max(min(notice.before, warning_lead(timer)), floor)


def action_date(timer: Timer, floor: timedelta = timedelta(0)) -> datetime | None:
    """When the action may happen, as the notices sent so far announced it. Pure.

    The timer's due date, moved later when a notice went out late, so that each notice
    sent keeps its lead (at least ``floor``, the ``sweep.min_notice_lead``) before it.
    """
    if timer.due_at is None:
        return None
    return max(
        [timer.due_at]
        + [n.sent_at + _lead(timer, n, floor) for n in timer.notices if n.sent_at is not None]
    )


def notices_due(
    timer: Timer, now: datetime, floor: timedelta = timedelta(0)
) -> list[tuple[Notice, datetime]]:
    """The notices to send at ``now``, each with the action date it states. Pure.

    Each notice goes out ``before`` the current date. A late schedule is moved forward,
    never collapsed: a notice sent late restates the date as ``now`` plus its lead (an
    announcement's lead is capped at the warning period), and each later notice keeps its
    spacing before that date. So no notice states a date already past, and a late run sends
    its first notice, not all of them at once.
    """
    date = action_date(timer, floor)
    out: list[tuple[Notice, datetime]] = []
    if date is None:
        return out
    for n in sorted(timer.pending_notices(), key=lambda n: -n.before):
        if date - n.before > now:
            break
        date = max(date, now + _lead(timer, n, floor))
        out.append((n, date))
    return out


def next_work(timer: Timer, floor: timedelta = timedelta(0)) -> datetime | None:
    """When the timer next has work: its next notice on the moved schedule, or its action.
    Pure."""
    date = action_date(timer, floor)
    pending = timer.pending_notices()
    if date is None or not pending:
        return date
    return date - max(n.before for n in pending)


@dataclass(frozen=True)
class Hold:
    """Why a due action waits, until when (None: until the next look), and whether to tell
    operators (once)."""

    reason: str
    until: datetime | None = None
    alert: bool = False


def delivery_hold(timer: Timer, now: datetime, delivered: datetime | None) -> Hold | None:
    """Whether a due action waits for its warning to have reached someone. Pure.

    No action before its first notice delivered (a mail accepted, or acknowledged) plus the
    rule's longest notice lead, however late that delivery came. None: it may act.
    """
    if not timer.notices:
        return None
    if delivered is None:
        return Hold(
            "held: no notice of this run was delivered (no accepted mail, no acknowledgement)",
            alert=True,
        )
    until = delivered + warning_lead(timer)
    if until <= now:
        return None
    return Hold(
        f"held: first notice delivered {delivered:%Y-%m-%d %H:%M}, action not before "
        f"{until:%Y-%m-%d %H:%M}",
        until,
    )


_TRUE = frozenset({"1", "true", "yes", "on"})


def _end_date(value: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def allocation_record(
    project: ProjectSnapshot, now: datetime, *, end_property: str, mark: str
) -> tuple[bool | None, str]:
    """What Keystone says of the project's allocation: (ended?, what it says). Pure.

    True: the project carries the tag or true property ``mark`` (when one is configured, it
    is required), or else the ``end_property`` date is at or before ``now``. False: the mark
    is missing, or the date is later (the allocation runs). None: Keystone records nothing.
    """
    if mark:
        flag = project.properties.get(mark, "").strip().lower()
        if mark in project.tags or flag in _TRUE:
            return True, f"project carries {mark!r}"
        return False, f"project does not carry {mark!r}"
    raw = project.properties.get(end_property, "") if end_property else ""
    if raw:
        end = _end_date(raw)
        if end is None:
            return None, f"{end_property}={raw!r} is not a date"
        if end <= now:
            return True, f"{end_property}={raw}"
        return False, f"{end_property}={raw}: the allocation runs"
    return None, f"no {end_property} property" if end_property else "no allocation record read"


def decide_cleanup(
    timer: Timer,
    project: ProjectSnapshot | None,
    policy: PolicySettings,
    now: datetime,
    *,
    end_property: str = "allocation_end",
    mark: str = "",
    trust_events: bool = False,
) -> Decision:
    """Clean up only the timer's project, not exempt, and only while Keystone confirms its
    allocation ended (the ``end_property`` date at or before ``now``, or ``mark``). Fails
    closed: a record that says the allocation runs, or (unless ``trust_events``) no record
    at all, holds the cleanup."""
    if project is None:
        return GONE
    if project.id != timer.resource_id:
        return Decision("wait", f"read returned project {project.id}, not {timer.resource_id}")
    if project.id in policy.exempt_projects:
        return Decision("skip", f"exempt: project {project.id} is in the configured list")
    ended, says = allocation_record(project, now, end_property=end_property, mark=mark)
    if ended is False or (ended is None and not trust_events):
        return unconfirmed(says)
    name = project.name or project.id
    if ended is None:
        return Decision("act", f"allocation ended (event trusted, Keystone: {says}); {name}")
    return Decision("act", f"allocation ended (Keystone: {says}); project {name} exists")


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
