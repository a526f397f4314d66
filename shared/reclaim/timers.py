"""Timers as data, and the pure merge that folds timer commands into them (no I/O).

A timer is one rule on one resource: its action, the notices before it, and the evidence
for it. The evidence is a set of observations ("the condition held at event time t, and
had since s") and ``closed_at`` (the latest event time at which the condition was known
not to hold, or the run was acted on). Merging is commutative and idempotent, so any
reordering or duplication of deliveries yields the timer the in-order stream would:

* a cancel at f raises ``closed_at`` to f and drops the observations at or before it;
* a schedule at t adds an observation unless t <= ``closed_at``;
* the timer is pending while observations remain; the condition's run began at the
  ``since`` of the earliest one, and the action is due ``delay`` after that.

A pending run whose due date moves (a corrected allocation end, a restated run) after some
of its notices went out keeps those notices as given and gets one ``date_changed`` notice,
due at the event time that moved it: people hear the new date once, not every notice again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from reclaim.commands import ALL_RULES, Instant, ResourceType, TimerCommand
from reclaim.durations import Duration
from reclaim.notices.kinds import DATE_CHANGED
from reclaim.redact import scrub

TimerState = Literal["pending", "cancelled", "done", "failed", "skipped", "gone"]

#: Observations kept per run: the earliest decide the start, the latest decide pruning.
MAX_OBSERVATIONS = 32


class Observation(BaseModel):
    """The condition held at event time ``at``, and had held since ``since``."""

    model_config = ConfigDict(frozen=True)

    at: Instant
    since: Instant


class Notice(BaseModel):
    """A notice ``before`` the action; ``sent_at`` once it went out."""

    model_config = ConfigDict(frozen=True)

    kind: str
    before: Duration
    due_at: Instant
    sent_at: Instant | None = None


#: Details kept on a timer: never a token, request context or URL password (they are
#: stored, and shown by ``reclaim audit``).
SafeDetail = Annotated[dict[str, str], AfterValidator(scrub)]


class AuditEntry(BaseModel):
    """One line of a timer's history: what happened, when, why, and how it went."""

    model_config = ConfigDict(frozen=True)

    at: Instant
    what: str
    outcome: str = ""
    detail: SafeDetail = Field(default_factory=dict)


class Timer(BaseModel):
    """One rule on one resource, as the store keeps it."""

    model_config = ConfigDict(frozen=True)

    resource_type: ResourceType
    resource_id: str
    rule: str
    action: str
    state: TimerState = "pending"
    project_id: str | None = None
    user_id: str | None = None
    clause: str = ""
    detail: SafeDetail = Field(default_factory=dict)
    delay: Duration = timedelta(0)
    #: How much later than ``since + delay`` this run's action was moved at its people's
    #: request (see :func:`extend`); a new run starts without.
    extension: Duration = timedelta(0)
    notice_spec: tuple[tuple[str, Duration], ...] = ()
    spec_at: Instant | None = None
    spec_key: str = ""
    observations: tuple[Observation, ...] = ()
    closed_at: Instant | None = None
    since: Instant | None = None
    due_at: Instant | None = None
    notices: tuple[Notice, ...] = ()
    attempts: int = 0
    lease_owner: str | None = None
    lease_until: Instant | None = None
    version: int = 0
    history: tuple[AuditEntry, ...] = ()

    @property
    def key(self) -> tuple[str, str, str]:
        """(resource_type, resource_id, rule): what identifies a timer."""
        return (self.resource_type, self.resource_id, self.rule)

    @property
    def last_event_at(self) -> datetime | None:
        """The newest event time this timer has seen."""
        times = [o.at for o in self.observations] + ([self.closed_at] if self.closed_at else [])
        return max(times) if times else None

    def next_due(self) -> datetime | None:
        """When the sweeper next has work on this timer: a notice or the action. Pure."""
        if self.state != "pending" or self.due_at is None:
            return None
        unsent = [n.due_at for n in self.notices if n.sent_at is None]
        return min([*unsent, self.due_at])

    def pending_notices(self) -> tuple[Notice, ...]:
        """Notices not yet sent, in due order."""
        return tuple(sorted((n for n in self.notices if n.sent_at is None), key=lambda n: n.due_at))


def _prune(observations: Iterable[tuple[datetime, datetime]]) -> tuple[Observation, ...]:
    """The observations kept, as (at, since) pairs in order: all of them, or the earliest and
    the latest :data:`MAX_OBSERVATIONS` halves. Only those kept become models."""
    ordered = sorted(set(observations))
    if len(ordered) > MAX_OBSERVATIONS:
        half = MAX_OBSERVATIONS // 2
        ordered = ordered[:half] + ordered[-half:]
    return tuple(Observation(at=at, since=since) for at, since in ordered)


def _spec_key(c: TimerCommand) -> str:
    """Orders two schedules of one event time (Nova's shelve and its immediate offload can
    share a timestamp), so that which one describes the timer does not depend on the
    order they were stored in."""
    return repr((c.action, sorted(c.detail.items()), c.project_id or "", c.user_id or ""))


def merge(timer: Timer | None, commands: Iterable[TimerCommand]) -> Timer | None:
    """Fold commands for one (resource, rule) into its timer. Pure, commutative, idempotent.

    ``commands`` hold an action command per event (schedule or cancel) and the notify
    commands that came with it. Returns None when there is nothing to keep (a cancel of a
    rule that never had a timer still leaves a record: it orders later deliveries).
    O(N log N) in the commands: one pass to sort them out, one sort of the observations.
    """
    cmds = list(commands)
    if not cmds:
        return timer
    first = cmds[0]
    t = timer or Timer(
        resource_type=first.resource_type,
        resource_id=first.resource_id,
        rule=first.rule,
        action=first.action,
        state="cancelled",
    )
    closed = t.closed_at
    notices_at: dict[datetime, list[TimerCommand]] = {}
    schedules: list[TimerCommand] = []
    for c in cmds:
        if c.action == "notify" and c.due_at:
            notices_at.setdefault(c.event_time, []).append(c)
        if c.op == "cancel":
            if closed is None or c.event_time > closed:
                closed = c.event_time
        elif c.action != "notify" and c.since is not None and c.due_at is not None:
            schedules.append(c)
    # The schedule that describes the timer: the latest event, ties broken by _spec_key
    # (and, among equal keys, the last delivered); it replaces the stored description
    # unless that one is later.
    spec = t
    if schedules:
        latest = max(c.event_time for c in schedules)
        best, best_key = schedules[0], ""
        for c in schedules:
            if c.event_time == latest and (key := _spec_key(c)) >= best_key:
                best, best_key = c, key
        assert best.due_at is not None and best.since is not None
        if spec.spec_at is None or (latest, best_key) >= (spec.spec_at, spec.spec_key):
            notices = tuple(
                (n.notice or "", best.due_at - n.due_at)
                for n in notices_at.get(latest, ())
                if n.due_at
            )
            spec = spec.model_copy(
                update={
                    "action": best.action,
                    "project_id": best.project_id,
                    "user_id": best.user_id,
                    "clause": best.clause,
                    "detail": dict(best.detail),
                    "delay": best.due_at - best.since,
                    "notice_spec": tuple(sorted(set(notices), key=lambda x: -x[1])),
                    "spec_at": latest,
                    "spec_key": best_key,
                }
            )
    pairs = [(o.at, o.since) for o in t.observations]
    pairs.extend((c.event_time, c.since) for c in schedules if c.since is not None)
    kept = _prune(p for p in pairs if closed is None or p[0] > closed)
    return _derive(spec.model_copy(update={"observations": kept, "closed_at": closed}), t)


def fold_resource(
    timers: Mapping[str, Timer], closed_all: datetime | None, commands: Iterable[TimerCommand]
) -> tuple[dict[str, Timer], datetime | None, int, int]:
    """Fold commands for one resource into its timers (by rule). Pure.

    Returns ``(timers, closed_all, changed, touched)``: the timers after, the time of the
    latest wildcard cancel, and how many timers changed out of those the commands reached.
    A wildcard cancel (rule ``*``) applies to every rule the resource has, and is
    remembered: a rule whose first event arrives after it but happened before it is
    closed as well, so the order of deliveries does not matter.
    """
    groups: dict[str, list[TimerCommand]] = {}
    wildcards: list[TimerCommand] = []
    for c in commands:
        if c.rule == ALL_RULES:
            wildcards.append(c)
        else:
            groups.setdefault(c.rule, []).append(c)
    latest = max(
        [c.event_time for c in wildcards] + ([closed_all] if closed_all else []), default=None
    )
    if latest is not None:
        for rule in {*groups, *(timers if wildcards else ())}:
            template = groups[rule][0] if rule in groups else timers[rule]
            groups.setdefault(rule, []).append(
                TimerCommand(
                    op="cancel",
                    resource_type=template.resource_type,
                    resource_id=template.resource_id,
                    rule=rule,
                    action=template.action,
                    event_time=latest,
                )
            )
    out = dict(timers)
    changed = 0
    for rule, cmds in groups.items():
        before = out.get(rule)
        after = merge(before, cmds)
        if after is not None and after != before:
            out[rule] = after
            changed += 1
    return out, latest, changed, len(groups)


def _derive(t: Timer, before: Timer, moved_at: datetime | None = None) -> Timer:
    """Recompute state, start, due date and notices from the evidence; a due date that
    moves is told once, at ``moved_at`` (default: the event that moved it)."""
    if not t.observations:
        if before.state not in ("pending", "cancelled"):
            return t  # done, failed...: the closed run stays as it was, for the audit
        # Nothing holds: forget the run's dates so the record depends only on the events,
        # not on how deliveries were batched.
        return t.model_copy(
            update={"state": "cancelled", "since": None, "due_at": None, "notices": ()}
        )
    start = min(t.observations, key=lambda o: (o.at, o.since)).since
    fresh_run = before.state != "pending"
    extension = timedelta(0) if fresh_run else t.extension
    due = start + t.delay + extension
    sent = {(n.kind, n.before, n.due_at): n.sent_at for n in before.notices}
    notices = tuple(
        Notice(kind=k, before=b, due_at=due - b, sent_at=sent.get((k, b, due - b)))
        for k, b in t.notice_spec
    )
    if not fresh_run:
        notices = _date_changed(before, notices, due, moved_at or t.spec_at or start)
    return t.model_copy(
        update={
            "state": "pending",
            "since": start,
            "due_at": due,
            "extension": extension,
            "notices": notices,
            "attempts": 0 if fresh_run else t.attempts,
        }
    )


def _date_changed(
    before: Timer, notices: tuple[Notice, ...], due: datetime, at: datetime
) -> tuple[Notice, ...]:
    """The notices of a pending run that ``before`` had, now due at ``due`` (moved at event
    time ``at``). Pure.

    Unmoved: the change notices it had stay. Moved after a notice went out: each notice
    given for the old date counts as given (so is each one already due at ``at``: the
    change notice tells its news), and one ``date_changed`` notice goes out at ``at``.
    """
    if before.due_at is None or before.due_at == due:
        return (*notices, *(n for n in before.notices if n.kind == DATE_CHANGED))
    told = {(n.kind, n.before): n.sent_at for n in before.notices if n.sent_at is not None}
    if not told:
        return notices
    kept = tuple(
        n.model_copy(update={"sent_at": told.get((n.kind, n.before)) or at})
        if n.sent_at is None and ((n.kind, n.before) in told or n.due_at <= at)
        else n
        for n in notices
    )
    change = Notice(kind=DATE_CHANGED, before=max(due - at, timedelta(0)), due_at=at)
    return (*kept, change)


def close(timer: Timer, state: TimerState, entry: AuditEntry) -> Timer:
    """End the timer's run as ``state`` (done, failed, skipped, gone) with an audit entry.

    The run's observations become history: only events newer than them start a new run.
    """
    last = timer.last_event_at
    return timer.model_copy(
        update={
            "state": state,
            "observations": (),
            "closed_at": last,
            "lease_owner": None,
            "lease_until": None,
            "history": (*timer.history, entry),
        }
    )


def extend(timer: Timer, by: timedelta, at: datetime, entry: AuditEntry) -> Timer:
    """The pending ``timer`` with its action moved ``by`` later at its people's request
    (``at``), audited with ``entry``. Pure.

    The due date moves as any restated date does (:func:`_date_changed`): the notices
    already given count as given, one ``date_changed`` notice goes out at ``at``, and the
    notices still to come state the new date. The extension lasts for this run of the
    condition only.
    """
    if timer.state != "pending":
        raise ValueError(f"only a pending timer can be extended, not a {timer.state} one")
    moved = timer.model_copy(
        update={"extension": timer.extension + by, "history": (*timer.history, entry)}
    )
    return _derive(moved, timer, moved_at=at)


def mark_notice_sent(timer: Timer, notice: Notice, at: datetime) -> Timer:
    """Record that ``notice`` went out at ``at``. Pure."""
    notices = tuple(
        n.model_copy(update={"sent_at": at})
        if (n.kind, n.before, n.due_at) == (notice.kind, notice.before, notice.due_at)
        else n
        for n in timer.notices
    )
    entry = AuditEntry(
        at=at,
        what=f"notice {notice.kind}",
        outcome="sent",
        detail={"due_at": notice.due_at.isoformat()},
    )
    return timer.model_copy(update={"notices": notices, "history": (*timer.history, entry)})
