"""Server rules: shelve after 14 days stopped or suspended; delete after 180 days shelved."""

from __future__ import annotations

from reclaim.commands import Rule, TimerCommand
from reclaim.models.nova import GONE_STATES, InstancePayload
from reclaim.settings import PolicySettings
from reclaim.wire import Notification

SHELVE = Rule(
    id="shelve",
    resource_type="server",
    action="shelve",
    notice="shelve_upcoming",
    clause="Instances that have been suspended or stopped can be shelved after two (2) weeks "
    "in said state.",
)
DELETE_SHELVED = Rule(
    id="delete-shelved",
    resource_type="server",
    action="delete",
    notice="delete_upcoming",
    clause="Shelved images/instances will be deleted after six (6) months of inactivity.",
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
    owner = {"project_id": server.project_id, "user_id": server.user_id}
    detail = {k: v for k, v in (("name", server.display_name), ("image_id", server.image_id)) if v}
    holding: list[TimerCommand] = []
    if is_exempt(server, policy) or server.state in GONE_STATES:
        active: set[str] = set()
    elif server.state in policy.shelve_states:
        active = {SHELVE.id}
        holding = SHELVE.schedule(
            server.server_id,
            since=t,
            delay=policy.shelve_after,
            event_time=t,
            notices=tuple((SHELVE.notice or "", d) for d in policy.shelve_notices),
            detail={**detail, "state": server.state},
            **owner,
        )
    elif server.state in SHELVED_STATES:
        active = {DELETE_SHELVED.id}
        holding = DELETE_SHELVED.schedule(
            server.server_id,
            since=t,
            delay=policy.delete_shelved_after,
            event_time=t,
            notices=tuple((DELETE_SHELVED.notice or "", d) for d in policy.delete_notices),
            detail={**detail, "state": server.state},
            **owner,
        )
    else:
        active = set()
    cancels = [r.cancel(server.server_id, event_time=t) for r in SERVER_RULES if r.id not in active]
    return cancels + holding
