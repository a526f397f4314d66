"""Acceptable-use rules: warn about end-of-life images and database ports open to the world.

Both only warn (the policy asks users to act); removing an exposed rule is an optional,
off-by-default remediation with the same safety as every other action.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from datetime import datetime, timedelta

from reclaim.commands import Rule, TimerCommand, iso_z
from reclaim.models.glance import ImagePayload
from reclaim.models.neutron import SecurityGroupRule, SecurityGroupRulePayload
from reclaim.settings import PolicySettings
from reclaim.wire import Notification

EOL_WARNING = Rule(
    id="eol-image",
    resource_type="image",
    action="warn_eol",
    notice=None,
    clause="As operating systems near the end of their supported life cycles, they will be "
    "removed from Featured Images; you may be notified that you must migrate your workflows "
    "to a newer version of the operating system you're using.",
)
EOL_REMINDER = replace(EOL_WARNING, id="eol-image-reminder")

EXPOSED_SERVICE = Rule(
    id="exposed-service",
    resource_type="security_group_rule",
    action="warn_exposed",
    notice=None,
    clause="Update and configure software that utilizes the network to preclude unauthorized "
    "access. Commonly neglected examples include MongoDB.",
)
EXPOSED_REMINDER = replace(EXPOSED_SERVICE, id="exposed-service-reminder")
#: The optional remediation: remove the rule after a grace period.
EXPOSED_REMEDIATION = replace(
    EXPOSED_SERVICE,
    id="exposed-service-removal",
    action="delete_rule",
    notice="rule_removal_upcoming",
)
EXPOSED_RULES = (EXPOSED_SERVICE, EXPOSED_REMINDER, EXPOSED_REMEDIATION)

_TRUE = frozenset({"1", "true", "yes", "on"})
_WORLD = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))


def eol_since(image: ImagePayload, policy: PolicySettings, event_time: datetime) -> datetime | None:
    """When the image became (or becomes) end-of-life by the configured marks; None if not. Pure."""
    marks: list[datetime] = []
    if policy.eol_when_hidden and image.os_hidden:
        marks.append(event_time)
    flag = image.properties.get(policy.eol_property)
    if flag is not None and str(flag).strip().lower() in _TRUE:
        marks.append(event_time)
    distro = str(image.properties.get("os_distro", "")).lower()
    version = str(image.properties.get("os_version", ""))
    for release in policy.eol_releases:
        if release.os_distro.lower() == distro and release.os_version == version:
            marks.append(release.end)
    return min(marks) if marks else None


def on_image_changed(n: Notification[ImagePayload], policy: PolicySettings) -> list[TimerCommand]:
    """Warn the users of servers booted from an end-of-life image, then remind them. Pure.

    Lifting every mark (un-hiding it, clearing the property) cancels the warnings.
    """
    image, t = n.payload, n.timestamp
    rules = (EOL_WARNING, EOL_REMINDER)
    since = None if image.deleted else eol_since(image, policy, t)
    if since is None:
        return [r.cancel(image.id, event_time=t) for r in rules]
    detail = {"name": image.name or "", "visibility": image.visibility, "eol_at": iso_z(since)}
    for key in ("os_distro", "os_version"):
        if key in image.properties:
            detail[key] = str(image.properties[key])
    out: list[TimerCommand] = []
    for rule, delay in ((EOL_WARNING, timedelta(0)), (EOL_REMINDER, policy.eol_reminder_after)):
        out += rule.schedule(
            image.id,
            since=since,
            delay=delay,
            event_time=t,
            project_id=image.owner,
            detail={k: v for k, v in detail.items() if v},
        )
    return out


def exposed_ports(rule: SecurityGroupRule, policy: PolicySettings) -> list[tuple[str, int]]:
    """(service, port) pairs that ``rule`` opens to the whole Internet. Pure.

    Ingress only; a remote security group limits the rule, so it exposes nothing; no prefix
    and no group means any address, as in Neutron. A missing protocol or port range means
    every protocol or port.
    """
    if rule.direction != "ingress" or rule.remote_group_id:
        return []
    if rule.remote_ip_prefix:
        try:
            prefix = ipaddress.ip_network(rule.remote_ip_prefix, strict=False)
        except ValueError:
            return []
        if prefix not in _WORLD:
            return []
    protocol = (rule.protocol or "any").lower()
    if protocol not in {"any", "tcp", "udp", "6", "17"}:
        return []
    low = 1 if rule.port_range_min is None else rule.port_range_min
    high = 65535 if rule.port_range_max is None else rule.port_range_max
    return sorted(
        (service, port)
        for service, ports in policy.exposed_ports.items()
        for port in ports
        if low <= port <= high
    )


def on_security_group_rule(
    n: Notification[SecurityGroupRulePayload], policy: PolicySettings
) -> list[TimerCommand]:
    """Warn a project at once about a rule that opens a database port to the world. Pure.

    A reminder follows unless the rule goes; with remediation on, the rule is removed after
    a grace period (with notices first). The rule's deletion cancels all of it.
    """
    rule, t = n.payload.rule, n.timestamp
    if n.event_type.startswith("security_group_rule.delete"):
        return [r.cancel(rule.id, event_time=t) for r in EXPOSED_RULES]
    exposed = exposed_ports(rule, policy)
    if not exposed:
        return []
    project = rule.project_id or n.context.get("project_id") or n.context.get("tenant_id")
    if project in policy.exempt_projects:
        return []
    detail = {
        "security_group_id": rule.security_group_id or "",
        "remote_ip_prefix": rule.remote_ip_prefix or "any",
        "protocol": rule.protocol or "any",
        "ports": ",".join(f"{s} {p}" for s, p in exposed),
    }
    plan: list[tuple[Rule, timedelta, tuple[timedelta, ...]]] = [
        (EXPOSED_SERVICE, timedelta(0), ()),
        (EXPOSED_REMINDER, policy.exposed_reminder_after, ()),
    ]
    if policy.exposed_remediation:
        grace = policy.exposed_remediation_grace
        plan.append((EXPOSED_REMEDIATION, grace, (grace, timedelta(days=1))))
    out: list[TimerCommand] = []
    for r, delay, before in plan:
        out += r.schedule(
            rule.id,
            since=t,
            delay=delay,
            event_time=t,
            notices=r.notices_before(before),
            project_id=project,
            detail=detail,
        )
    return out
