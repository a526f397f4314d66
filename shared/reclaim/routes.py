"""The route table: which event types reclaim reads, how it parses them, and who handles them.

Everything that subscribes or dispatches derives from :data:`ROUTES`: the bus listener's
targets and filters, the Lambda adapters, ``reclaim invoke`` and the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from pydantic import BaseModel

from reclaim.commands import TimerCommand
from reclaim.models.allocation import AllocationPayload
from reclaim.models.glance import ImageMemberPayload, ImagePayload
from reclaim.models.keystone import IdentityPayload
from reclaim.models.neutron import SecurityGroupRulePayload
from reclaim.models.nova import InstancePayload
from reclaim.policy import acceptable_use, images, projects, servers
from reclaim.settings import PolicySettings
from reclaim.wire import Bounds, Notification, ParseError, read_envelope, read_payload

Handler = Callable[[Notification[Any], PolicySettings], list[TimerCommand]]

# Nova actions whose ``.end`` leaves a server in a state the policy cares about.
_NOVA_ACTIONS = (
    "power_off", "power_on", "suspend", "resume", "pause", "unpause", "shelve",
    "shelve_offload", "unshelve", "delete", "soft_delete", "restore", "rescue", "unrescue",
)  # fmt: skip


@dataclass(frozen=True)
class Route:
    """Event types of one family: where they are published, their model and handler."""

    name: str
    event_types: tuple[str, ...]
    model: type[BaseModel]
    handler: Handler | None
    exchange: str
    topic: str = "notifications"
    priorities: tuple[str, ...] = ("info",)
    summary: str = ""
    #: Payload dates that name a time to come (a renewal's new end), exempt from the
    #: window's ``max_ahead`` (see :meth:`reclaim.wire.Bounds.check`).
    scheduled: tuple[str, ...] = ()


ROUTES: tuple[Route, ...] = (
    Route(
        "nova-versioned",
        (*tuple(f"instance.{a}.end" for a in _NOVA_ACTIONS), "instance.update"),
        InstancePayload,
        servers.on_instance,
        "nova",
        "versioned_notifications",
        summary="server state: start, continue or cancel the shelve and delete timers",
    ),
    Route(
        "nova-legacy",
        (*tuple(f"compute.instance.{a}.end" for a in _NOVA_ACTIONS), "compute.instance.update"),
        InstancePayload,
        servers.on_instance,
        "nova",
        summary="the same, from Nova's default unversioned notifications",
    ),
    Route(
        "allocation-ended",
        ("allocation.ended", "expiry.allocation.restrict"),
        AllocationPayload,
        projects.on_allocation_ended,
        "openstack",
        priorities=("info", "audit"),
        summary="schedule project cleanup (+180 d) with notices; warn the image dependents",
    ),
    Route(
        "allocation-renewed",
        ("allocation.renewed",),
        AllocationPayload,
        projects.on_allocation_renewed,
        "openstack",
        summary="cancel the project's cleanup and image warnings",
        scheduled=("end_date",),
    ),
    Route(
        "owner-removed",
        ("identity.project.deleted", "identity.user.deleted"),
        IdentityPayload,
        projects.on_owner_removed,
        "keystone",
        summary="warn the image dependents; delete the owner's shared images after a grace",
    ),
    Route(
        "project-updated",
        ("identity.project.updated",),
        IdentityPayload,
        projects.on_project_updated,
        "keystone",
        summary="nothing: Keystone's docs warn against acting on it",
    ),
    Route(
        "image-deleted",
        ("image.delete",),
        ImagePayload,
        images.on_image_deleted,
        "glance",
        summary="cancel the image's timers",
    ),
    Route(
        "image",
        ("image.create", "image.update"),
        ImagePayload,
        acceptable_use.on_image_changed,
        "glance",
        summary="end-of-life image: warn the users of servers booted from it, remind later",
    ),
    Route(
        "image-member",
        ("image.member.create", "image.member.update", "image.member.delete"),
        ImageMemberPayload,
        None,
        "glance",
        summary="parsed; no rule yet",
    ),
    Route(
        "security-group-rule",
        ("security_group_rule.create.end", "security_group_rule.delete.end"),
        SecurityGroupRulePayload,
        acceptable_use.on_security_group_rule,
        "neutron",
        summary="a database port open to the world: warn the project now, remind later",
    ),
)

_BY_EVENT_TYPE: dict[str, Route] = {et: r for r in ROUTES for et in r.event_types}


def route_for(event_type: str) -> Route | None:
    """The route of ``event_type``, or None when reclaim does not read it."""
    return _BY_EVENT_TYPE.get(event_type)


@cache
def _date_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """The payload fields of ``model`` that hold a date."""
    return tuple(
        name
        for name, info in model.model_fields.items()
        if info.annotation in (datetime, datetime | None)
    )


def parse(
    body: bytes | str | Mapping[str, Any], bounds: Bounds | None = None
) -> Notification[Any] | None:
    """Parse a body into its family's typed notification; None for an unknown event type.

    Raises :class:`reclaim.wire.ParseError` for a malformed body or payload, and
    :class:`reclaim.wire.OutOfWindow` (one) when the event's timestamp, or any date of its
    payload, lies outside ``bounds``' event-time window (default: the floor only).
    """
    limits = bounds or _FLOOR_ONLY
    envelope = read_envelope(body, limits.max_body)
    route = route_for(envelope.event_type)
    if route is None:
        return None
    try:
        limits.check(envelope.timestamp, "timestamp")
        notification = read_payload(envelope, route.model)
        for name in _date_fields(route.model):
            value = getattr(notification.payload, name)
            if value is not None:
                limits.check(value, f"payload.{name}", scheduled=name in route.scheduled)
    except ParseError as exc:
        exc.event_type, exc.message_id = envelope.event_type, envelope.message_id
        raise
    return notification


_FLOOR_ONLY = Bounds()


def decide(notification: Notification[Any], policy: PolicySettings) -> list[TimerCommand]:
    """Run the routed handler on a parsed notification. Pure."""
    route = route_for(notification.event_type)
    if route is None or route.handler is None:
        return []
    return route.handler(notification, policy)


def commands_for(
    body: bytes | str | Mapping[str, Any], policy: PolicySettings, bounds: Bounds | None = None
) -> list[TimerCommand]:
    """Parse a body and decide its commands: the whole pure pipeline in one call."""
    notification = parse(body, bounds)
    return [] if notification is None else decide(notification, policy)
