"""Project rules: clean up 180 days after an allocation ends; warn an image's dependents and
remove the images of an owner who leaves."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from reclaim.commands import ResourceType, Rule, TimerCommand, iso_z
from reclaim.models.allocation import AllocationPayload
from reclaim.models.keystone import IdentityPayload
from reclaim.settings import PolicySettings
from reclaim.wire import Notification

_IMAGE_CLAUSE = (
    "If you are using a community-contributed image that belongs to another user, if that "
    "user no longer has an allocation or is removed for other reasons, their image will go "
    "away as well."
)

_MICRO = timedelta(microseconds=1)

PROJECT_CLEANUP = Rule(
    id="project-cleanup",
    resource_type="project",
    action="cleanup",
    notice="cleanup_upcoming",
    clause="All entities owned by a project will be deleted {period} after an allocation ends.",
)
#: Sent once when the allocation ends, as the first of the cleanup's notices.
ALLOCATION_ENDED_NOTICE = "allocation_ended"

#: Find the servers booted from, and the members of, the owner's shared, community and
#: public images, and tell them the images will go (the sweeper turns the scan into notices).
DEPENDENTS_WARNING = Rule(
    id="image-dependents",
    resource_type="project",
    action="scan_dependents",
    notice=None,
    clause=_IMAGE_CLAUSE,
)
DEPENDENTS_REMINDER = replace(DEPENDENTS_WARNING, id="image-dependents-reminder")
OWNER_IMAGES = Rule(
    id="owner-images",
    resource_type="project",
    action="delete_images",
    notice="images_deletion_upcoming",
    clause=_IMAGE_CLAUSE,
)


def _dependents(
    resource_type: ResourceType,
    owner_id: str,
    since: datetime,
    images_go: timedelta,
    policy: PolicySettings,
    event_time: datetime,
    detail: dict[str, str],
) -> list[TimerCommand]:
    """Warn dependents now and remind them ``dependents_reminder`` before the images go."""
    detail = {**detail, "images_go_at": iso_z(since + images_go)}
    warn = replace(DEPENDENTS_WARNING, resource_type=resource_type)
    remind = replace(DEPENDENTS_REMINDER, resource_type=resource_type)
    reminder_delay = max(images_go - policy.dependents_reminder, timedelta(0))
    project_id, user_id = _owner(resource_type, owner_id)
    out: list[TimerCommand] = []
    for rule, delay in ((warn, timedelta(0)), (remind, reminder_delay)):
        out += rule.schedule(
            owner_id,
            since=since,
            delay=delay,
            event_time=event_time,
            detail=detail,
            project_id=project_id,
            user_id=user_id,
        )
    return out


def _owner(resource_type: ResourceType, owner_id: str) -> tuple[str | None, str | None]:
    """(project_id, user_id) of an image owner that is a project or a user."""
    return (owner_id, None) if resource_type == "project" else (None, owner_id)


def on_allocation_ended(
    n: Notification[AllocationPayload], policy: PolicySettings
) -> list[TimerCommand]:
    """Schedule the project's cleanup with its notices, and the image-dependents warnings. Pure."""
    alloc, t = n.payload, n.timestamp
    project = alloc.project_id
    if project in policy.exempt_projects:
        return on_allocation_renewed(n, policy)
    ended = alloc.end_date or t
    detail = {"allocation_id": alloc.allocation_id or ""}
    if alloc.contacts:
        detail["contacts"] = ",".join(c.email for c in alloc.contacts)
    detail = {k: v for k, v in detail.items() if v}
    # The latest allocation.ended states the end: one at t closes what earlier ones said
    # (a cancel just before t), so a corrected end_date restates the cleanup, earlier or
    # later, while an older event delivered late changes nothing.
    restated = [
        rule.cancel(project, event_time=t - _MICRO)
        for rule in (PROJECT_CLEANUP, DEPENDENTS_WARNING, DEPENDENTS_REMINDER)
    ]
    notices = (
        (ALLOCATION_ENDED_NOTICE, policy.cleanup_after),
        *PROJECT_CLEANUP.notices_before(
            tuple(d for d in policy.cleanup_notices if d < policy.cleanup_after)
        ),
    )
    return [
        *restated,
        *PROJECT_CLEANUP.schedule(
            project,
            since=ended,
            delay=policy.cleanup_after,
            event_time=t,
            notices=notices,
            project_id=project,
            detail=detail,
        ),
        *_dependents("project", project, ended, policy.cleanup_after, policy, t, detail),
    ]


def on_allocation_renewed(
    n: Notification[AllocationPayload], policy: PolicySettings
) -> list[TimerCommand]:
    """Cancel the project's cleanup and image warnings: the allocation goes on. Pure."""
    rules = (PROJECT_CLEANUP, DEPENDENTS_WARNING, DEPENDENTS_REMINDER)
    return [r.cancel(n.payload.project_id, event_time=n.timestamp) for r in rules]


def on_owner_removed(
    n: Notification[IdentityPayload], policy: PolicySettings
) -> list[TimerCommand]:
    """A Keystone project or user was deleted: warn dependents, then delete their images. Pure.

    The event type says which (``identity.project.deleted`` or ``identity.user.deleted``).
    """
    resource_type: ResourceType = "user" if n.event_type == "identity.user.deleted" else "project"
    owner_id, t = n.payload.resource_id, n.timestamp
    if resource_type == "project" and owner_id in policy.exempt_projects:
        return []
    project_id, user_id = _owner(resource_type, owner_id)
    rule = replace(OWNER_IMAGES, resource_type=resource_type)
    return [
        *rule.schedule(
            owner_id,
            since=t,
            delay=policy.owner_removed_grace,
            event_time=t,
            notices=rule.notices_before(policy.image_deletion_notices),
            project_id=project_id,
            user_id=user_id,
        ),
        *_dependents(resource_type, owner_id, t, policy.owner_removed_grace, policy, t, {}),
    ]


def on_project_updated(
    n: Notification[IdentityPayload], policy: PolicySettings
) -> list[TimerCommand]:
    """No action. Pure.

    Keystone sends ``identity.project.updated`` with only the id (never "disabled"), and
    its documentation warns against deleting anything on it.
    """
    return []
