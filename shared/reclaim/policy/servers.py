"""Server rules: shelve after 14 days stopped or suspended; delete after 180 days shelved."""

from __future__ import annotations

from datetime import timedelta

from reclaim.commands import Rule, TimerCommand
from reclaim.models.nova import GONE_STATES, InstancePayload
from reclaim.settings import PolicySettings
from reclaim.wire import Notification

SHELVE = Rule(
    id="shelve",
    resource_type="server",
    action="shelve",
    notice="shelve_upcoming",
    clause="Instances that have been suspended or stopped can be shelved after {period} in "
    "said state.",
)
DELETE_SHELVED = Rule(
    id="delete-shelved",
    resource_type="server",
    action="delete",
    notice="delete_upcoming",
    clause="Shelved images/instances will be deleted after {period} of inactivity.",
)
SERVER_RULES = (SHELVE, DELETE_SHELVED)

#: Both shelved states run one clock: ``shelve_offload.end`` right after ``shelve.end``
#: continues the same condition and must not push the deletion later.
SHELVED_STATES = frozenset({"shelved", "shelved_offloaded"})

_FALSE = frozenset({"", "0", "false", "no", "off"})


def is_exempt(server: InstancePayload, policy: PolicySettings) -> bool:
    """True when the server, its project or its metadata exempts it from every rule. Pure."""
    flag = server.metadata.get(policy.exempt_metadata_key)
    return (
        server.server_id in policy.exempt_servers
        or server.project_id in policy.exempt_projects
        or (flag is not None and flag.strip().lower() not in _FALSE)
    )


def on_instance(n: Notification[InstancePayload], policy: PolicySettings) -> list[TimerCommand]:
    """Start, continue or stop the shelve and delete clocks from a server's vm_state. Pure.

    Every state observation is reported for both rules, so whatever order deliveries
    arrive in, the store can tell a continuing condition from a new one.
    """
    server, t = n.payload, n.timestamp
    clock: tuple[Rule, timedelta, tuple[timedelta, ...]] | None = None
    if is_exempt(server, policy) or server.state in GONE_STATES:
        clock = None
    elif server.state in policy.shelve_states:
        clock = (SHELVE, policy.shelve_after, policy.shelve_notices)
    elif server.state in SHELVED_STATES:
        clock = (DELETE_SHELVED, policy.delete_shelved_after, policy.delete_notices)
    running = clock[0] if clock else None
    out = [r.cancel(server.server_id, event_time=t) for r in SERVER_RULES if r is not running]
    if clock is not None:
        rule, delay, before = clock
        detail = {"name": server.display_name, "image_id": server.image_id, "state": server.state}
        out += rule.schedule(
            server.server_id,
            since=t,
            delay=delay,
            event_time=t,
            notices=rule.notices_before(before),
            project_id=server.project_id,
            user_id=server.user_id,
            detail={k: v for k, v in detail.items() if v},
        )
    return out
