"""The re-check before an action: given a timer and the live resource, act or not. Pure.

Every rule fails closed: anything that does not positively confirm the timer's condition
means no action now. A resource that no longer exists closes the timer as gone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from reclaim.settings import PolicySettings
from reclaim.timers import Timer

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
