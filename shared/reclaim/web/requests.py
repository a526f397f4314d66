"""What people ask of reclaim from its pages: more time (keep it), or an exemption.

**Keep it** (:func:`keep`): the action of one pending timer moves later by the rule's
``web.extensions`` amount, once per run of the condition, within ``web.max_extensions_*``
per resource and per project over ``web.extension_window``. The timer is restated as a
corrected date is (:func:`reclaim.timers.extend`: notices given stay given, one
``date_changed`` mail, the later notices state the new date) and the grant is in its audit.
A second request for the same run (a replayed form) changes nothing. A request refused by a
limit, and a grant that reaches one, alert the operators (``extension_limit_reached``).

**Exemptions** (:class:`ExemptionRequest`): :func:`ask_exemption` records a request and
alerts the operators (``exemption_requested``); they :func:`approve` or :func:`refuse` it on
their page. Approval sets the server metadata key ``policy.exempt_metadata_key`` through
the cloud, the exemption every re-check honours, so the next sweep skips the server.
Every decision is in the request and in the audit of the server's pending timers.

The records live in the timer table under their own keys, never in the due index:
``pk = extensions#<project>`` (one item per grant), ``pk = extension_slots#<project>`` (the
project's limit, taken by conditional writes) and ``pk = exemption_requests``.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from reclaim.durations import human_duration
from reclaim.redact import scrub_text
from reclaim.settings import Settings
from reclaim.store import DynamoTimerStore
from reclaim.store.items import TableItems
from reclaim.sweeper.notices import NoticePort, operator_alert
from reclaim.sweeper.sweep import NOTICE_HOLD, planned_date
from reclaim.timers import AuditEntry, Timer, extend

log = logging.getLogger("reclaim.web")

#: Operator alert: extensions reached a limit (a grant reached it, or a request was refused).
EXTENSION_LIMIT = "extension_limit_reached"
#: Operator alert: someone asks for a server to be exempted.
EXEMPTION_REQUESTED = "exemption_requested"
#: Longest reason kept (characters); a longer one is cut.
MAX_REASON = 1000
#: How long grant records are kept: longer than any extension window in use.
RETENTION = timedelta(days=800)
_NAMESPACE = uuid.UUID("3c0d6f1e-8a57-5b2e-9d41-6a0f7e2b9c35")


def clean_reason(text: str) -> str:
    """A person's reason as kept: one paragraph of text, secrets masked, at most
    :data:`MAX_REASON` characters. Pure."""
    flat = " ".join(text.split())
    return scrub_text(flat)[:MAX_REASON]


class Extensions(TableItems):
    """The grants of one project's resources (for the per-project limit)."""

    what = "extensions"

    def __init__(self, store: DynamoTimerStore) -> None:
        super().__init__(store.client, store.table)

    def record(self, timer: Timer, by: timedelta, who: str, at: datetime) -> bool:
        """Keep the grant on ``timer``'s run; False when it was kept already."""
        return self._put_if(
            Item={
                "pk": {"S": f"extensions#{timer.project_id}"},
                "sk": {
                    "S": f"{timer.resource_type}#{timer.resource_id}#{timer.rule}#{timer.since}"
                },
                "at": {"S": at.isoformat()},
                "by": {"S": who},
                "days": {"N": str(by.days)},
                "expires_at": {"N": str(int((at + RETENTION).timestamp()))},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )

    def claim_slot(
        self, project_id: str, limit: int, window: timedelta, at: datetime
    ) -> str | None:
        """Take one of the project's ``limit`` slots for a grant at ``at`` (a slot is free
        again ``window`` after the grant that took it), with a conditional write: two
        grants at once, in two processes, never take the same slot. The slot's key, for
        :meth:`free_slot`, or None when all are taken."""
        token = uuid.uuid4().hex
        for n in range(limit):
            if self._put_if(
                Item={
                    "pk": {"S": f"extension_slots#{project_id}"},
                    "sk": {"S": f"slot#{n}"},
                    "free_at": {"S": (at + window).isoformat()},
                    "token": {"S": token},
                    "expires_at": {"N": str(int((at + RETENTION).timestamp()))},
                },
                ConditionExpression="attribute_not_exists(pk) OR #f <= :now",
                ExpressionAttributeNames={"#f": "free_at"},
                ExpressionAttributeValues={":now": {"S": at.isoformat()}},
            ):
                return f"{n}#{token}"
        return None

    def free_slot(self, project_id: str, slot: str) -> None:
        """Give back a slot taken by :meth:`claim_slot` for a grant that did not happen."""
        n, token = slot.split("#", 1)
        self._delete_if(
            Key={"pk": {"S": f"extension_slots#{project_id}"}, "sk": {"S": f"slot#{n}"}},
            ConditionExpression="#t = :token",
            ExpressionAttributeNames={"#t": "token"},
            ExpressionAttributeValues={":token": {"S": token}},
        )

    def count(self, project_id: str, since: datetime) -> int:
        """Grants to the project's resources at or after ``since``."""
        n = 0
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"extensions#{project_id}"}},
            "ConsistentRead": True,
        }
        while True:
            page = self._call("query", **kwargs)
            for item in page.get("Items", []):
                with contextlib.suppress(KeyError, ValueError):
                    if datetime.fromisoformat(item["at"]["S"]) >= since:
                        n += 1
            if "LastEvaluatedKey" not in page:
                return n
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


@dataclass(frozen=True)
class Offer:
    """Whether "keep it" is offered for a timer: by how much, or why not (for people)."""

    by: timedelta | None
    why_not: str = ""
    limit: str = ""


def granted_on(timers: list[Timer], since: datetime) -> int:
    """Extensions granted on these timers (one resource) at or after ``since``. Pure."""
    return sum(
        1
        for t in timers
        for e in t.history
        if e.what == "extend" and e.outcome == "granted" and e.at >= since
    )


def offer(
    timer: Timer,
    settings: Settings,
    now: datetime,
    resource_timers: list[Timer],
    project_grants: int,
) -> Offer:
    """What "keep it" may do for ``timer`` now, given the resource's timers and the grants to
    its project within the window. Pure."""
    web = settings.web
    by = web.extensions.get(timer.rule)
    if timer.state != "pending" or timer.due_at is None:
        return Offer(None, "Nothing is scheduled any more.")
    if by is None:
        return Offer(None, "This action cannot be postponed from this page.")
    if timer.extension:
        return Offer(None, "It was postponed already: it can be postponed once.")
    if (
        timer.lease_owner
        and not timer.lease_owner.startswith("hold:")
        and timer.lease_until is not None
        and timer.lease_until > now
    ):
        return Offer(None, "reclaim is acting on it right now.")
    since = now - web.extension_window
    if granted_on(resource_timers, since) >= web.max_extensions_per_resource:
        return Offer(
            None,
            f"This resource was postponed {_times(web.max_extensions_per_resource)} within "
            f"{human_duration(web.extension_window)}, the most allowed. Ask for an exemption, "
            "or ask your cloud's support.",
            limit="resource",
        )
    if timer.project_id and project_grants >= web.max_extensions_per_project:
        return Offer(
            None,
            f"The project's resources were postponed {_times(web.max_extensions_per_project)} "
            f"within {human_duration(web.extension_window)}, the most allowed. Ask your "
            "cloud's support.",
            limit="project",
        )
    return Offer(by)


@dataclass(frozen=True)
class Kept:
    """The answer to "keep it": ``granted``, and a sentence for the person."""

    granted: bool
    message: str
    timer: Timer | None = None
    new_date: datetime | None = None


def _publish(notices: NoticePort, message: Any) -> None:
    """Publish an alert; a bus that does not take it is logged (the change stands)."""
    try:
        notices.publish(message)
    except Exception as exc:
        log.warning("alert %s not published: %s", message.kind, exc)


def _find(store: DynamoTimerStore, resource_type: str, resource_id: str, rule: str) -> Timer | None:
    return next((t for t in store.timers_for(resource_type, resource_id) if t.rule == rule), None)


def keep(
    store: DynamoTimerStore,
    settings: Settings,
    notices: NoticePort,
    timer: Timer,
    who: str,
    reason: str,
    now: datetime,
) -> Kept:
    """Postpone ``timer``'s action once (see the module docstring) for ``who``, because of
    ``reason``; ``timer`` as the person saw it (its current version is read again)."""
    text = clean_reason(reason)
    if not text:
        return Kept(False, "Say in a few words why you still need it.")
    floor = settings.sweep.min_notice_lead
    for _ in range(5):
        timers = store.timers_for(timer.resource_type, timer.resource_id)
        current = next((t for t in timers if t.rule == timer.rule), None)
        if current is None:
            return Kept(False, "Nothing is scheduled any more.")
        if current.state == "pending" and current.since == timer.since and current.extension:
            # the same run was postponed already (this form sent twice): nothing more
            when, _held = planned_date(current, floor)
            return Kept(False, "It was postponed already.", current, when)
        ledger = Extensions(store)
        since = now - settings.web.extension_window
        project_grants = ledger.count(current.project_id, since) if current.project_id else 0
        can = offer(current, settings, now, timers, project_grants)
        slot = None
        if can.by is not None and current.project_id:
            # the count above is a read: the project's limit holds by a conditional slot
            slot = ledger.claim_slot(
                current.project_id,
                settings.web.max_extensions_per_project,
                settings.web.extension_window,
                now,
            )
            if slot is None:
                can = offer(current, settings, now, timers, settings.web.max_extensions_per_project)
        if can.by is None:
            if can.limit:
                _publish(
                    notices,
                    operator_alert(
                        EXTENSION_LIMIT, current, f"extension refused: {can.limit} limit reached",
                        requested_by=who, request_reason=text,
                    ),
                )  # fmt: skip
            return Kept(False, can.why_not, current)
        before, _held = planned_date(current, floor)
        entry = AuditEntry(
            at=now,
            what="extend",
            outcome="granted",
            detail={
                "by": who,
                "reason": text,
                "postponed": human_duration(can.by),
                "from": before.isoformat() if before else "",
            },
        )
        # later than the date the person was shown (which the notices' lead may have moved
        # past the due date), by the whole amount
        assert current.due_at is not None
        shown = max(before or current.due_at, current.due_at)
        moved = extend(current, shown + can.by - current.due_at, now, entry)
        if moved.lease_owner == NOTICE_HOLD:
            # the sweeper waited for the old schedule's next step: let it look again now
            moved = moved.model_copy(update={"lease_owner": None, "lease_until": None})
        stored = store.replace(current, moved)
        if stored is None:
            if slot is not None and current.project_id:
                ledger.free_slot(current.project_id, slot)
            continue  # changed meanwhile (a sweep, an event): read it again
        if current.project_id:
            ledger.record(stored, can.by, who, now)
        after, _held = planned_date(stored, floor)
        _limits_reached(settings, notices, stored, timers, project_grants + 1, now, who)
        return Kept(True, f"Postponed by {human_duration(can.by)}.", stored, after)
    return Kept(False, "It changed while you asked; reload the page and try again.")


def _limits_reached(
    settings: Settings,
    notices: NoticePort,
    timer: Timer,
    timers: list[Timer],
    project_grants: int,
    now: datetime,
    who: str,
) -> None:
    """Alert the operators when this grant used up a limit."""
    web = settings.web
    since = now - web.extension_window
    resource_grants = granted_on(timers, since) + 1
    reached = []
    if resource_grants >= web.max_extensions_per_resource:
        reached.append(f"resource: {resource_grants} of {web.max_extensions_per_resource}")
    if timer.project_id and project_grants >= web.max_extensions_per_project:
        reached.append(f"project: {project_grants} of {web.max_extensions_per_project}")
    if reached:
        _publish(
            notices,
            operator_alert(
                EXTENSION_LIMIT, timer, "extension limit reached (" + "; ".join(reached) + ")",
                granted_to=who,
            ),
        )  # fmt: skip


# -- exemption requests ----------------------------------------------------------------

RequestState = Literal["pending", "approved", "refused"]


class ExemptionRequest(BaseModel):
    """Someone asks operators to exempt a resource from every rule."""

    model_config = ConfigDict(frozen=True)

    request_id: str
    resource_type: str
    resource_id: str
    resource_name: str = ""
    project_id: str | None = None
    requested_by: str
    reason: str
    requested_at: datetime
    state: RequestState = "pending"
    decided_by: str = ""
    decided_at: datetime | None = None
    why: str = ""


_REQUESTS_PK = {"S": "exemption_requests"}


class ExemptionRequests(TableItems):
    """The exemption requests, one item each under ``pk = exemption_requests``."""

    what = "exemption requests"

    def __init__(self, store: DynamoTimerStore) -> None:
        super().__init__(store.client, store.table)

    def add(self, request: ExemptionRequest) -> bool:
        """Keep ``request``; False when one with its id exists (asked already)."""
        return self._put_if(
            Item={
                "pk": _REQUESTS_PK,
                "sk": {"S": request.request_id},
                "request_state": {"S": request.state},
                "doc": {"S": request.model_dump_json()},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )

    def get(self, request_id: str) -> ExemptionRequest | None:
        item = self._call(
            "get_item", Key={"pk": _REQUESTS_PK, "sk": {"S": request_id}}, ConsistentRead=True
        ).get("Item")
        return ExemptionRequest.model_validate_json(item["doc"]["S"]) if item else None

    def all(self, state: RequestState | None = None) -> list[ExemptionRequest]:
        """Every request (in ``state``), oldest first."""
        out: list[ExemptionRequest] = []
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": _REQUESTS_PK},
            "ConsistentRead": True,
        }
        while True:
            page = self._call("query", **kwargs)
            for item in page.get("Items", []):
                try:
                    r = ExemptionRequest.model_validate_json(item["doc"]["S"])
                except (KeyError, ValueError):
                    continue
                if state is None or r.state == state:
                    out.append(r)
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted(out, key=lambda r: r.requested_at)

    def for_resource(self, resource_type: str, resource_id: str) -> list[ExemptionRequest]:
        return [
            r
            for r in self.all()
            if (r.resource_type, r.resource_id) == (resource_type, resource_id)
        ]

    def decide(self, decided: ExemptionRequest) -> bool:
        """Store the decision if the request is still pending; False when it was decided."""
        return self._put_if(
            Item={
                "pk": _REQUESTS_PK,
                "sk": {"S": decided.request_id},
                "request_state": {"S": decided.state},
                "doc": {"S": decided.model_dump_json()},
            },
            ConditionExpression="#s = :pending",
            ExpressionAttributeNames={"#s": "request_state"},
            ExpressionAttributeValues={":pending": {"S": "pending"}},
        )


def request_id(resource_type: str, resource_id: str, requested_by: str) -> str:
    """One request per resource and person: the same id however often they ask. Pure."""
    return str(uuid.uuid5(_NAMESPACE, f"{resource_type}|{resource_id}|{requested_by}"))


def ask_exemption(
    store: DynamoTimerStore,
    notices: NoticePort,
    timer: Timer,
    who: str,
    reason: str,
    now: datetime,
) -> tuple[bool, str]:
    """Record ``who``'s request to exempt ``timer``'s resource and alert the operators.
    (True, message) when recorded; (False, why) when not (asked already, no reason)."""
    text = clean_reason(reason)
    if not text:
        return False, "Say in a few words why it should be exempted."
    request = ExemptionRequest(
        request_id=request_id(timer.resource_type, timer.resource_id, who),
        resource_type=timer.resource_type,
        resource_id=timer.resource_id,
        resource_name=timer.detail.get("name", ""),
        project_id=timer.project_id,
        requested_by=who,
        reason=text,
        requested_at=now,
    )
    if not ExemptionRequests(store).add(request):
        return False, "You asked already; the operators will answer on this page."
    _audit(store, timer.resource_type, timer.resource_id, now, "exemption", "requested",
           {"by": who, "reason": text, "request": request.request_id})  # fmt: skip
    _publish(
        notices,
        operator_alert(
            EXEMPTION_REQUESTED, timer, f"exemption requested by {who}",
            request=request.request_id, request_reason=text,
        ),
    )  # fmt: skip
    return True, "Your request was sent to the operators. Their answer will show on this page."


class MetadataWrites(Protocol):
    """The cloud write an approval makes."""

    def set_server_metadata(self, server_id: str, key: str, value: str) -> Any: ...


class DecisionError(RuntimeError):
    """The request cannot be decided (decided already, unknown, nothing to write through)."""


def approve(
    store: DynamoTimerStore,
    settings: Settings,
    cloud: MetadataWrites | None,
    request: ExemptionRequest,
    who: str,
    why: str,
    now: datetime,
) -> ExemptionRequest:
    """Approve ``request``: set the exemption on the server through ``cloud`` first (a
    :class:`~reclaim.sweeper.cloud.CloudError` leaves the request pending), then record the
    decision and audit it on the server's timers. Raises :class:`DecisionError`."""
    if request.resource_type != "server":
        raise DecisionError("only servers are exempted through the cloud")
    if cloud is None:
        raise DecisionError("no cloud to write the exemption through (reclaim web --cloud)")
    current = ExemptionRequests(store).get(request.request_id)
    if current is None or current.state != "pending":
        raise DecisionError("this request was decided already")
    text = clean_reason(why)
    key = settings.policy.exempt_metadata_key
    value = f"approved {now:%Y-%m-%d} by {who}"[:255]
    cloud.set_server_metadata(request.resource_id, key, value)
    return _decide(store, current, "approved", who, text, now, {"metadata": f"{key}={value}"})


def refuse(
    store: DynamoTimerStore, request: ExemptionRequest, who: str, why: str, now: datetime
) -> ExemptionRequest:
    """Refuse ``request`` (recorded and audited on the server's timers). Raises
    :class:`DecisionError`."""
    current = ExemptionRequests(store).get(request.request_id)
    if current is None or current.state != "pending":
        raise DecisionError("this request was decided already")
    return _decide(store, current, "refused", who, clean_reason(why), now, {})


def _decide(
    store: DynamoTimerStore,
    request: ExemptionRequest,
    state: RequestState,
    who: str,
    why: str,
    now: datetime,
    extra: dict[str, str],
) -> ExemptionRequest:
    decided = request.model_copy(
        update={"state": state, "decided_by": who, "decided_at": now, "why": why}
    )
    if not ExemptionRequests(store).decide(decided):
        raise DecisionError("this request was decided already")
    _audit(store, request.resource_type, request.resource_id, now, "exemption", state,
           {"by": who, "why": why, "request": request.request_id, **extra})  # fmt: skip
    return decided


def _audit(
    store: DynamoTimerStore,
    resource_type: str,
    resource_id: str,
    at: datetime,
    what: str,
    outcome: str,
    detail: dict[str, str],
) -> None:
    """Add one audit entry to each pending timer of the resource (retrying on conflicts)."""
    entry = AuditEntry(at=at, what=what, outcome=outcome, detail=detail)
    for t in store.timers_for(resource_type, resource_id):
        if t.state != "pending":
            continue
        current: Timer | None = t
        for _ in range(5):
            if current is None:
                break
            if store.replace(
                current, current.model_copy(update={"history": (*current.history, entry)})
            ):
                break
            current = _find(store, resource_type, resource_id, t.rule)
