"""Pure: a listed resource becomes an observation, and observations become timer commands.

A reconcile runs the same policy handlers as the event path. Each server of the listing
becomes a synthetic ``Notification[InstancePayload]`` stamped with the server's own
``updated_at`` (its last change, so the condition has held at least since then), and
:func:`reclaim.policy.servers.on_instance` decides its commands; each image becomes a
synthetic ``image.update`` for :func:`reclaim.policy.acceptable_use.on_image_changed`; each
project carrying the allocation-end property becomes the ``allocation.ended`` (or
``allocation.renewed``) its allocation system would have sent, for
:mod:`reclaim.policy.projects`. Nothing here reads the clock or does I/O: ``now`` is always
an argument.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from reclaim.commands import Rule, TimerCommand
from reclaim.models.allocation import AllocationPayload
from reclaim.models.glance import GLANCE_CORE_FIELDS, ImagePayload
from reclaim.models.nova import InstancePayload
from reclaim.policy import acceptable_use, projects, servers
from reclaim.settings import PolicySettings
from reclaim.timers import Timer, merge
from reclaim.wire import Notification, P, parse_timestamp

#: The event type of the synthetic notifications a reconcile builds.
SERVER_EVENT = "reclaim.reconcile.server"
#: Images are observed as the update Glance would have sent (the route of image events).
IMAGE_EVENT = "image.update"
#: Projects are observed as the allocation events reclaim defines (DESIGN §3.5).
ALLOCATION_ENDED = "allocation.ended"
ALLOCATION_RENEWED = "allocation.renewed"
PUBLISHER = "reclaim.reconcile"
_MICRO = timedelta(microseconds=1)
_FRACTION = re.compile(r"\d{2}:\d{2}:\d{2}\.\d")

Change = Literal["create", "cancel", "move", "unchanged", "absent"]


#: The server rules a reconcile compares, and the image rules.
SERVER_RULE_IDS = tuple(r.id for r in servers.SERVER_RULES)
IMAGE_RULES = (acceptable_use.EOL_WARNING, acceptable_use.EOL_REMINDER)
IMAGE_RULE_IDS = tuple(r.id for r in IMAGE_RULES)
#: The project rules of an allocation's end.
PROJECT_RULES = (
    projects.PROJECT_CLEANUP,
    projects.DEPENDENTS_WARNING,
    projects.DEPENDENTS_REMINDER,
)
PROJECT_RULE_IDS = tuple(r.id for r in PROJECT_RULES)


class ObservationError(ValueError):
    """A listed resource lacks what an observation needs (id, project, state, updated)."""


def _observed(event_type: str, key: str, when: datetime, payload: P) -> Notification[P]:
    """The synthetic notification of one observation, stamped ``when``."""
    return Notification(
        message_id=f"reconcile:{key}:{when.isoformat()}",
        publisher_id=PUBLISHER,
        event_type=event_type,
        priority="INFO",
        timestamp=when,
        payload=payload,
    )


def changed_between(updated: str) -> tuple[datetime, datetime]:
    """The instants a reported ``updated`` may stand for: ``(earliest, latest)``. Pure.

    Nova reports whole seconds, so ``2026-03-01T10:00:00Z`` means some time in
    ``[10:00:00, 10:00:00.999999]``; a value with a fraction stands for itself.
    """
    when = parse_timestamp(updated)
    if _FRACTION.search(updated):
        return when, when
    return when, when + timedelta(seconds=1) - _MICRO


def server_notification(server: Mapping[str, Any]) -> Notification[InstancePayload]:
    """A listed server (``GET /servers/detail`` JSON) as the notification of its state. Pure.

    The timestamp is the latest instant its ``updated`` may stand for: the condition it is
    in has held since then at least, and a start taken from it is never too early. The
    payload's ``updated_at`` keeps the earliest one.
    """
    try:
        sid, project, state = server["id"], server["tenant_id"], server["OS-EXT-STS:vm_state"]
        earliest, latest = changed_between(server["updated"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ObservationError(f"server {server.get('id', '?')}: {exc!r}") from exc
    image = server.get("image")
    image_id = image.get("id") if isinstance(image, Mapping) else None
    metadata = server.get("metadata") or {}
    # Built as the versioned payload Nova would send, so the model normalises it as usual.
    data = {
        "uuid": sid,
        "tenant_id": project,
        "user_id": server.get("user_id"),
        "state": state,
        "task_state": server.get("OS-EXT-STS:task_state"),
        "image_uuid": image_id or None,
        "display_name": server.get("name"),
        "metadata": {str(k): str(v) for k, v in metadata.items()},
        "locked": server.get("locked"),
        "updated_at": earliest,
    }
    try:
        payload = InstancePayload.model_validate({"nova_object.data": data})
    except ValueError as exc:
        raise ObservationError(f"server {sid}: {exc}") from exc
    return _observed(SERVER_EVENT, f"server:{sid}", latest, payload)


def image_notification(image: Mapping[str, Any]) -> Notification[ImagePayload]:
    """A listed image (``GET /v2/images`` JSON) as the ``image.update`` of its state. Pure.

    Stamped, like a server, with the latest instant its ``updated_at`` may stand for;
    the payload keeps the earliest. Glance lists custom properties beside its own fields;
    the notification carries them under ``properties``, as Glance's own would.
    """
    try:
        iid = image["id"]
        earliest, latest = changed_between(image["updated_at"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ObservationError(f"image {image.get('id', '?')}: {exc!r}") from exc
    data = {k: image.get(k) for k in ("id", "name", "owner", "status", "tags") if image.get(k)}
    data.update(
        visibility=image.get("visibility") or "shared",
        protected=bool(image.get("protected")),
        os_hidden=bool(image.get("os_hidden")),
        properties={k: v for k, v in image.items() if k not in GLANCE_CORE_FIELDS},
        updated_at=earliest,
    )
    try:
        payload = ImagePayload.model_validate(data)
    except ValueError as exc:
        raise ObservationError(f"image {iid}: {exc}") from exc
    return _observed(IMAGE_EVENT, f"image:{iid}", latest, payload)


def project_notification(
    project: Mapping[str, Any], prop: str, now: datetime
) -> Notification[AllocationPayload] | None:
    """A listed project (``GET /v3/projects`` JSON) as the allocation event of its state. Pure.

    ``prop`` names the property holding the allocation's end (an ISO 8601 date, which
    means midnight UTC, or datetime); a project without it (or with it empty) is not
    observed: None. An end at or before ``now`` is the ``allocation.ended`` the allocation
    system would have sent when it ended, stamped with the end itself, so any event at or
    after the end (a renewal, say) still wins over it. A later end means the allocation
    runs: an ``allocation.renewed`` stamped ``now``.
    """
    value = project.get(prop)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    pid = project.get("id")
    if not isinstance(value, str):
        raise ObservationError(f"project {pid or '?'}: {prop} is not a date: {value!r}")
    try:
        payload = AllocationPayload.model_validate({"project_id": pid, "end_date": value.strip()})
    except ValueError as exc:
        raise ObservationError(f"project {pid or '?'}: {prop}={value!r}: {exc}") from exc
    end = payload.end_date
    assert end is not None
    ended = end <= now
    when = end if ended else now
    event_type = ALLOCATION_ENDED if ended else ALLOCATION_RENEWED
    return _observed(event_type, f"project:{payload.project_id}", when, payload)


def first_install(
    commands: Sequence[TimerCommand], now: datetime, grace: timedelta
) -> list[TimerCommand]:
    """Push actions due before ``now + grace`` to ``now + grace``, their notices with them. Pure.

    For each such schedule the run is restated, one microsecond after the observation,
    with its start moved so that the action falls due at ``now + grace``; a cancel at the
    observation's own time closes the unshifted run. Later reconciles (which observe the
    same instant) therefore change nothing, while any newer event still counts. Notices
    keep their offsets before the action, so the ones further ahead than the grace fall
    due at once and the rest before the action; a rule without notices gets one now.
    """
    earliest = now + grace
    out: list[TimerCommand] = []
    shifted: dict[tuple[str, str, datetime], timedelta] = {}
    for c in commands:
        if (
            c.op == "schedule"
            and c.action != "notify"
            and c.due_at is not None
            and c.since is not None
            and c.due_at < earliest
        ):
            shifted[(c.resource_id, c.rule, c.event_time)] = earliest - c.due_at
    for c in commands:
        shift = shifted.get((c.resource_id, c.rule, c.event_time))
        if shift is None or c.op != "schedule" or c.due_at is None:
            out.append(c)
            continue
        moved = replace(
            c,
            due_at=c.due_at + shift,
            since=c.since + shift if c.since else None,
            event_time=c.event_time + _MICRO,
        )
        if c.action != "notify":
            out.append(replace(c, op="cancel", due_at=None, since=None, notice=None))
            if not any(
                n.action == "notify" and n.rule == c.rule and n.event_time == c.event_time
                for n in commands
            ):
                out.append(
                    replace(moved, action="notify", notice=f"{c.action}_upcoming", due_at=now)
                )
        out.append(moved)
    return out


@dataclass(frozen=True, slots=True)
class RulePlan:
    """What a reconcile does to one (resource, rule): the change and the commands for it."""

    rule: str
    change: Change
    before: Timer | None
    after: Timer | None
    commands: tuple[TimerCommand, ...]


def _pending(t: Timer | None) -> bool:
    return t is not None and t.state == "pending"


def _classify(before: Timer | None, after: Timer | None) -> Change:
    if not _pending(before):
        return "create" if _pending(after) else "absent"
    if not _pending(after):
        return "cancel"
    assert before is not None and after is not None
    same = before.due_at == after.due_at and {n.due_at for n in before.notices} == {
        n.due_at for n in after.notices
    }
    return "unchanged" if same else "move"


def _plan_rules(
    rules: Sequence[Rule],
    resource_id: str,
    commands: Sequence[TimerCommand],
    stored: Iterable[Timer],
    changed_at: datetime,
    observed_at: datetime,
    now: datetime,
    grace: timedelta | None = None,
) -> list[RulePlan]:
    """Fold an observation's ``commands`` into each rule's stored timer. Pure.

    * A rule the observation runs: a stored pending run that started before
      ``changed_at`` (the earliest instant of the resource's last change) is restated
      from it; with ``grace``, :func:`first_install` shifts the rule's commands.
    * A rule it does not run is cancelled by the observation's own commands; a stored
      timer that stays pending, having seen evidence newer than ``observed_at``, is
      cancelled at ``now``.
    * A rule with nothing stored and nothing to schedule is "absent".
    """
    by_rule = {t.rule: t for t in stored}
    plans: list[RulePlan] = []
    for rule in rules:
        cmds = [c for c in commands if c.rule == rule.id]
        running = any(c.op == "schedule" for c in cmds)
        before = by_rule.get(rule.id)
        if running and _pending(before):
            assert before is not None
            if before.since is not None and before.since < changed_at:
                cmds.insert(0, rule.cancel(before.resource_id, event_time=changed_at - _MICRO))
        if running and grace is not None:
            cmds = first_install(cmds, now, grace)
        if not running and not _pending(before):
            plans.append(RulePlan(rule.id, "absent", before, before, ()))
            continue
        after = merge(before, cmds)
        if not running and _pending(after) and now > observed_at:
            cmds.append(rule.cancel(resource_id, event_time=now))
            after = merge(before, cmds)
        plans.append(RulePlan(rule.id, _classify(before, after), before, after, tuple(cmds)))
    return plans


def plan_server(
    notification: Notification[InstancePayload],
    stored: Iterable[Timer],
    policy: PolicySettings,
    now: datetime,
    *,
    grace: timedelta | None = None,
) -> list[RulePlan]:
    """What to change in a server's stored timers so they match its observed state. Pure.

    * The rule the state runs (shelve or delete-shelved): the observation joins the
      stored evidence. A stored run that started before the server's last change
      (``updated_at``) cannot be trusted: an event that ended it may have been lost, and
      the sweeper refuses a timer whose server changed after its start anyway. Such a run
      restarts at the observation, so no start is ever earlier than the server's own
      last change.
    * Every other rule is cancelled at the observation; evidence newer than the cloud's
      last change contradicts the listing and is cancelled at ``now``.
    * A rule with no stored timer and nothing to schedule is left without a record.
    """
    return _plan_rules(
        servers.SERVER_RULES,
        notification.payload.server_id,
        servers.on_instance(notification, policy),
        stored,
        _changed_floor(notification),
        notification.timestamp,
        now,
        grace,
    )


def _changed_floor(n: Notification[InstancePayload]) -> datetime:
    """The earliest instant the server's last change may have happened at."""
    return n.payload.updated_at if n.payload.updated_at is not None else n.timestamp


def plan_project(
    notification: Notification[AllocationPayload],
    stored: Iterable[Timer],
    policy: PolicySettings,
    now: datetime,
    *,
    grace: timedelta | None = None,
) -> list[RulePlan]:
    """What to change in a project's cleanup and image-dependents timers so they match
    its allocation's observed end. Pure.

    The observation's time is the allocation's end (ended) or ``now`` (running), and is
    also the floor of a stored run: a pending cleanup that started before the end is
    restated from it. The rest is :func:`plan_server`'s: rules the observation does not
    run are cancelled, newer contrary evidence at ``now``.

    With ``grace`` (first install), a cleanup that would fall due before ``now + grace``
    is restated as an allocation that ended at ``now + grace - cleanup_after``, one
    microsecond after the observation, and a cancel of each project rule at the
    observation's own time closes the unshifted run. The cleanup, its notices, both
    dependents warnings and the ``images_go_at`` they announce stay consistent, and later
    reconciles (which observe the same end at the same time) change nothing. Notices
    already past fall due at once, before the action.
    """
    if notification.event_type == ALLOCATION_ENDED:
        commands = projects.on_allocation_ended(notification, policy)
    else:
        commands = projects.on_allocation_renewed(notification, policy)
    end = notification.payload.end_date or notification.timestamp
    if (
        grace is not None
        and any(c.op == "schedule" for c in commands)
        and end + policy.cleanup_after < now + grace
    ):
        t = notification.timestamp
        restated = replace(
            notification,
            timestamp=t + _MICRO,
            payload=notification.payload.model_copy(
                update={"end_date": now + grace - policy.cleanup_after}
            ),
        )
        pid = notification.payload.project_id
        commands = [
            *(rule.cancel(pid, event_time=t) for rule in PROJECT_RULES),
            *projects.on_allocation_ended(restated, policy),
        ]
    return _plan_rules(
        PROJECT_RULES,
        notification.payload.project_id,
        commands,
        stored,
        notification.timestamp,
        notification.timestamp,
        now,
    )


def plan_image(
    notification: Notification[ImagePayload],
    stored: Iterable[Timer],
    policy: PolicySettings,
) -> list[RulePlan]:
    """What to change in an image's end-of-life warnings so they match its listing. Pure.

    The observation is the ``image.update`` of the image's last change. If a stored
    timer has already seen an event at or after that change, the listing tells the store
    nothing new and the timer is left as it is (a warning already given stays given).
    Otherwise the observation is folded in as a delivered event would be: a hidden or
    end-of-life image gets its warning and reminder, an image no longer end-of-life has
    them cancelled.
    """
    commands = acceptable_use.on_image_changed(notification, policy)
    changed_at = notification.payload.updated_at or notification.timestamp
    by_rule = {t.rule: t for t in stored}
    plans: list[RulePlan] = []
    for rule in IMAGE_RULES:
        before = by_rule.get(rule.id)
        cmds = tuple(c for c in commands if c.rule == rule.id)
        running = any(c.op == "schedule" for c in cmds)
        seen = before.last_event_at if before is not None else None
        if (seen is not None and seen >= changed_at) or (not running and not _pending(before)):
            plans.append(
                RulePlan(rule.id, "unchanged" if _pending(before) else "absent", before, before, ())
            )
            continue
        after = merge(before, cmds)
        plans.append(RulePlan(rule.id, _classify(before, after), before, after, cmds))
    return plans


def plan_missing(timer: Timer, now: datetime) -> RulePlan:
    """A pending timer whose resource the listing no longer has: cancel it at ``now``. Pure."""
    cancel = TimerCommand(
        op="cancel",
        resource_type=timer.resource_type,
        resource_id=timer.resource_id,
        rule=timer.rule,
        action=timer.action,
        event_time=now,
        clause=timer.clause,
    )
    after = merge(timer, [cancel])
    return RulePlan(timer.rule, _classify(timer, after), timer, after, (cancel,))
