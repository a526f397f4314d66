"""One pass over the due timers: claim, warn, re-check, act, complete.

For each timer the due index returns (``store.pending(now)``):

1. skip it while an unexpired lease is on it (another sweeper's claim, or a retry backoff);
2. claim it: a compare-and-set that writes a lease (losing the race means someone else has it);
3. publish its due notices, then record them as sent (at-least-once, see ``notices``);
4. if the action is due: re-read the resource, decide (:mod:`reclaim.sweeper.rules`), act,
   and close the timer with an audit entry (what, when, why, outcome, request ids).

A notice the bus did not take fails its timer's turn: the claim is released, the timer stays
due for the next sweep and the report counts it (``notices_failed``, an alert). Any other
error on a claimed timer releases the claim too, rather than leaving it for the lease time.

Failures count attempts on the timer; a timer is retried on a later sweep with a growing
backoff (its lease pushed out) and marked failed, with an operator alert, after
``max_attempts``. Destructive actions are capped per sweep and per project: past a cap the
sweep stops, the rest stays pending, an alert goes out and the breaker opens until reset.
A dry run reads but writes nothing: no claim, no notice, no mutating cloud request.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from reclaim.settings import PolicySettings, SweepSettings
from reclaim.store import DynamoTimerStore
from reclaim.store.quarantine import Quarantine
from reclaim.sweeper import actions
from reclaim.sweeper.breaker import Breaker
from reclaim.sweeper.cloud import CloudError, CloudPort
from reclaim.sweeper.notices import (
    ACTION_FAILED,
    ACTION_SKIPPED,
    CAP_REACHED,
    NoticeMessage,
    NoticePort,
    operator_alert,
    owner_notice,
    unreadable_alert,
)
from reclaim.sweeper.rules import ACT, Decision, notice_hold
from reclaim.timers import AuditEntry, Notice, Timer, close, mark_notice_sent

#: Actions that change or remove people's resources (capped, blocked by the breaker).
DESTRUCTIVE = actions.DESTRUCTIVE
#: Actions this sweeper carries out; other due timers stay pending and are reported.
SUPPORTED = actions.SUPPORTED
#: The lease owner that marks an action held back for its notice lead time.
NOTICE_HOLD = "hold:notice-lead"

Result = Literal[
    "done",
    "skipped",
    "gone",
    "failed",
    "retry",
    "waiting",
    "notified",
    "leased",
    "contended",
    "blocked",
    "unsupported",
    "would-act",
    "would-skip",
    "would-notify",
]


@dataclass(frozen=True)
class Outcome:
    """What a sweep did with one timer."""

    resource_type: str
    resource_id: str
    rule: str
    action: str
    result: Result
    reason: str = ""
    notices: tuple[str, ...] = ()
    request_ids: tuple[str, ...] = ()
    project_id: str | None = None


@dataclass
class SweepReport:
    """A sweep's summary: one outcome per timer looked at, alerts, whether the breaker opened."""

    started: datetime
    dry_run: bool
    outcomes: list[Outcome] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    breaker_opened: bool = False
    breaker_was_open: bool = False
    stopped: str = ""
    #: Notices the bus did not take (their timers stay due).
    notices_failed: int = 0
    #: Keys of stored items that do not decode, skipped (``reclaim store quarantine list``).
    unreadable: list[str] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        return Counter(o.result for o in self.outcomes)

    def notices_sent(self) -> int:
        return sum(len(o.notices) for o in self.outcomes)


class _CapReached(Exception):
    pass


class NoticeFailed(Exception):
    """The notice port did not take a notice."""

    def __init__(self, message: NoticeMessage, error: Exception) -> None:
        super().__init__(f"notice {message.kind} not sent: {error}")


class Sweeper:
    """Carries out due timers. Thread-safe per sweep; ``now`` is always passed in."""

    def __init__(
        self,
        store: DynamoTimerStore,
        cloud: CloudPort,
        notices: NoticePort,
        policy: PolicySettings,
        owner_id: str,
        settings: SweepSettings | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.cloud = cloud
        self.notices = notices
        self.policy = policy
        self.owner_id = owner_id
        self.settings = settings or SweepSettings()
        self.breaker = Breaker(store)
        self._sleep = sleep
        self._lock = threading.Lock()

    # -- the pass ---------------------------------------------------------------------
    def sweep(
        self,
        now: datetime,
        *,
        dry_run: bool | None = None,
        max_actions: int | None = None,
        deadline: float | None = None,
        progress: Callable[[Outcome], None] | None = None,
    ) -> SweepReport:
        """One pass over the timers due at ``now``; ``deadline`` is a ``time.monotonic()``
        value after which no further timer is started."""
        dry = self.settings.dry_run if dry_run is None else dry_run
        report = SweepReport(started=now, dry_run=dry)
        state = _PassState(
            cap=self.settings.max_actions if max_actions is None else max_actions,
            project_cap=self.settings.max_actions_per_project,
            blocked=self.breaker.status().open,
        )
        report.breaker_was_open = state.blocked
        mark = self.store.read_mark()
        with ThreadPoolExecutor(max_workers=self.settings.parallelism) as pool:
            inflight: set[Future[Outcome]] = set()
            slots = threading.Semaphore(self.settings.parallelism * 2)
            for timer in self._due(now):
                if state.stop.is_set():
                    break
                if deadline is not None and time.monotonic() > deadline:
                    report.stopped = "deadline"
                    break
                slots.acquire()
                fut = pool.submit(self._one, timer, now, dry, state)
                fut.add_done_callback(lambda _f: slots.release())
                inflight.add(fut)
            for fut in inflight:
                outcome = fut.result()
                report.outcomes.append(outcome)
                if progress is not None:
                    progress(outcome)
        if state.cap_reason:
            report.stopped = state.cap_reason
            if not dry:
                report.alerts.append(state.cap_reason)
                report.breaker_opened = self.breaker.open(now, state.cap_reason)
                alert = operator_alert(
                    CAP_REACHED,
                    None,
                    state.cap_reason,
                    actions=str(state.actions),
                    owner=self.owner_id,
                )
                try:
                    self._publish(alert)
                except NoticeFailed as exc:
                    state.unsent.append(str(exc))
        report.alerts.extend(state.alerts)
        self._unreadable(report, mark, state)
        if state.unsent:
            report.notices_failed = len(state.unsent)
            report.alerts.append(
                f"{len(state.unsent)} notice(s) not sent, their timers stay due for the next "
                f"sweep: {state.unsent[0]}"
            )
        report.outcomes.sort(key=lambda o: (o.resource_type, o.resource_id, o.rule))
        return report

    def _unreadable(self, report: SweepReport, mark: int, state: _PassState) -> None:
        """Count the stored items this pass skipped and alert operators once about each
        (published, then marked on the item; a dry run only counts)."""
        skipped = self.store.unreadable(mark)
        report.unreadable = [u.key for u in skipped]
        if report.dry_run:
            return
        quarantine = Quarantine.beside(self.store)
        for u in skipped:
            if u.reported:
                continue
            try:
                self._publish(unreadable_alert(u.key, u.reason))
                quarantine.mark_reported(u.key, datetime.now(UTC))
            except NoticeFailed as exc:
                state.unsent.append(str(exc))
            except Exception as exc:  # a store error: the alert goes out again next sweep
                report.alerts.append(f"{u.key}: alert sent, not recorded: {exc}")

    def _due(self, now: datetime) -> Iterator[Timer]:
        yield from self.store.pending(now)

    # -- one timer --------------------------------------------------------------------
    def _one(self, timer: Timer, now: datetime, dry: bool, state: _PassState) -> Outcome:
        try:
            return self._handle(timer, now, dry, state)
        except _CapReached:
            return _outcome(timer, "blocked", state.cap_reason)
        except NoticeFailed as exc:
            state.unsent.append(str(exc))
            self._unclaim(timer)
            return _outcome(timer, "waiting", str(exc))
        except Exception as exc:  # a store error: the timer stays as it was stored
            self._unclaim(timer)
            return _outcome(timer, "waiting", f"{type(exc).__name__}: {exc}")

    def _unclaim(self, timer: Timer) -> None:
        """Release this sweeper's claim on ``timer`` after a failure, if it holds one (best
        effort: when the store is what failed, the lease runs out instead)."""
        with contextlib.suppress(Exception):
            current = self._reread(timer)
            if current is not None and current.lease_owner == self.owner_id:
                self._commit(current, lambda cur: _release(cur, self.owner_id))

    def _publish(self, message: NoticeMessage) -> None:
        try:
            self.notices.publish(message)
        except Exception as exc:
            raise NoticeFailed(message, exc) from exc

    def _handle(self, timer: Timer, now: datetime, dry: bool, state: _PassState) -> Outcome:
        if timer.lease_until is not None and timer.lease_until > now:
            held = (
                "notice lead time"
                if timer.lease_owner == NOTICE_HOLD
                else "retry backoff"
                if timer.attempts
                else f"claimed by {timer.lease_owner}"
            )
            return _outcome(timer, "leased", f"{held} until {timer.lease_until.isoformat()}")
        due_notices = [n for n in timer.pending_notices() if n.due_at <= now]
        action_due = timer.due_at is not None and timer.due_at <= now
        hold = notice_hold(timer, now, self.settings.min_notice_lead) if action_due else None
        if hold is not None:
            action_due = False
        destructive = timer.action in DESTRUCTIVE
        supported = timer.action in SUPPORTED
        act = action_due and supported and not (destructive and state.blocked)
        idle = (
            ""
            if not action_due
            else (f"action {timer.action} not implemented" if not supported else "breaker open")
        )
        idle_result: Result = "unsupported" if action_due and not supported else "blocked"
        if dry:
            return self._dry(timer, now, due_notices, act, idle, idle_result, state)
        if hold is not None and not due_notices:
            why = f"action held until {hold.isoformat()} (notice lead time)"
            holding = self.store.replace(
                timer, timer.model_copy(update={"lease_owner": NOTICE_HOLD, "lease_until": hold})
            )
            return _outcome(timer, "leased" if holding else "contended", why)
        if not due_notices and not act:
            return _outcome(timer, idle_result, idle)
        claimed = self.store.replace(
            timer,
            timer.model_copy(
                update={"lease_owner": self.owner_id, "lease_until": now + self.settings.lease}
            ),
        )
        if claimed is None:
            return _outcome(timer, "contended", "changed or claimed by another sweeper")
        sent: list[str] = []
        if due_notices:
            for n in due_notices:
                self._publish(owner_notice(claimed, n))
                sent.append(n.kind)

            def record(cur: Timer) -> Timer:
                for n in due_notices:
                    cur = mark_notice_sent(cur, n, now)
                return cur if act else _release(cur, self.owner_id)

            stored = self._commit(claimed, record)
            if stored is None:
                return _outcome(timer, "waiting", "timer changed while notifying", sent)
            claimed = stored
        if hold is not None:
            holding = self._commit(
                claimed,
                lambda cur: cur.model_copy(
                    update={"lease_owner": NOTICE_HOLD, "lease_until": hold}
                ),
            )
            why = f"action held until {hold.isoformat()} (notice lead time)"
            if holding is None:
                return _outcome(timer, "waiting", "timer changed while holding", sent)
            return _outcome(timer, "notified" if sent else "leased", why, sent)
        if not act:
            return _outcome(timer, "notified" if sent else idle_result, idle, sent)
        return self._act(claimed, now, state, tuple(sent))

    def _dry(
        self,
        timer: Timer,
        now: datetime,
        due_notices: list[Notice],
        act: bool,
        idle: str,
        idle_result: Result,
        state: _PassState,
    ) -> Outcome:
        kinds = tuple(n.kind for n in due_notices)
        if not act:
            return _outcome(timer, "would-notify" if kinds else idle_result, idle, kinds)
        try:
            decision, live = self._recheck(timer, now)
            if decision.kind == "act":
                preview = actions.preview(self._ctx(now), timer, live)
        except CloudError as exc:
            return _outcome(timer, "waiting", str(exc), kinds)
        if decision.kind == "act":
            if not state.try_reserve(timer):
                # the caps count in a dry run too: show where a real sweep would stop
                return _outcome(timer, "blocked", f"a real sweep stops here: {state.cap_reason}")
            return _outcome(timer, "would-act", f"{decision.reason}; {preview}", kinds)
        return _outcome(timer, "would-skip", f"{decision.kind}: {decision.reason}", kinds)

    def _ctx(self, now: datetime, state: _PassState | None = None) -> actions.Context:
        return actions.Context(
            cloud=self.cloud,
            notices=self.notices,
            policy=self.policy,
            settings=self.settings,
            now=now,
            reserve=state.try_reserve if state is not None else (lambda _t: True),
        )

    def _recheck(self, timer: Timer, now: datetime) -> tuple[Decision, object]:
        return actions.recheck(self._ctx(now), timer)

    def _act(
        self, claimed: Timer, now: datetime, state: _PassState, sent: tuple[str, ...]
    ) -> Outcome:
        """Re-check then act, up to ``tries_per_sweep`` times on transient errors.

        Every try re-reads the resource first: a call that timed out may have gone through,
        and then the re-check sees the goal reached instead of calling again.
        """
        result: actions.Done | None = None
        rids: list[str] = []
        error: CloudError | None = None
        reserved = False
        decision = ACT
        step = "re-check"
        for n in range(self.settings.tries_per_sweep):
            if n:
                self._sleep(self.settings.retry_sleep * 2 ** (n - 1))
            try:
                step = "re-check"
                decision, live = self._recheck(claimed, now)
                if decision.kind != "act":
                    return self._settle(claimed, now, decision, sent, rids)
                if not reserved:
                    try:
                        state.reserve(claimed)
                    except _CapReached:
                        self._commit(claimed, lambda cur: _release(cur, self.owner_id))
                        raise
                    reserved = True
                step = "action"
                result = actions.perform(self._ctx(now, state), claimed, live)
                break
            except CloudError as exc:
                error = exc
                if exc.request_id and step == "action":
                    rids.append(exc.request_id)
                claimed = self._commit(claimed, _count_attempt) or claimed
                if not exc.transient or claimed.attempts >= self.settings.max_attempts:
                    break
        if result is None:
            assert error is not None
            return self._failure(claimed, now, error, sent, step, rids=rids)
        rids.extend(result.request_ids)
        if result.gone:
            return self._settle(claimed, now, Decision("gone", "404 on the action"), sent, rids)
        for message in result.messages:
            self._publish(message)
        if result.partial:
            # a cap stopped it part way: record what was done, keep the rest pending
            part = AuditEntry(
                at=now,
                what=claimed.action,
                outcome="partial",
                detail={"why": state.cap_reason, "request_ids": ",".join(rids), **result.detail},
            )
            self._commit(
                claimed,
                lambda cur: _release(
                    cur.model_copy(update={"history": (*cur.history, part)}), self.owner_id
                ),
            )
            return _outcome(claimed, "blocked", f"{state.cap_reason}; {result.summary}", sent)
        entry = AuditEntry(
            at=now,
            what=claimed.action,
            outcome=result.outcome,
            detail={
                "why": decision.reason,
                "rule": claimed.rule,
                "clause": claimed.clause,
                "request_ids": ",".join(rids),
                "by": self.owner_id,
                "attempts": str(claimed.attempts + 1),
                "notices": ",".join(sorted({m.kind for m in result.messages})),
                **result.detail,
            },
        )
        self._close(claimed, "done", entry)
        reason = decision.reason + (f"; {result.summary}" if result.summary else "")
        return _outcome(claimed, "done", reason, sent, tuple(rids))

    # -- endings ----------------------------------------------------------------------
    def _settle(
        self,
        claimed: Timer,
        now: datetime,
        decision: Decision,
        sent: tuple[str, ...],
        rids: list[str] | None = None,
    ) -> Outcome:
        """Close or release a timer the re-check did not let act."""
        if decision.kind == "wait":
            # keep the claim for one lease: the next sweep after it looks again
            return _outcome(claimed, "waiting", decision.reason, sent)
        state = {"done": "done", "skip": "skipped", "gone": "gone"}[decision.kind]
        entry = AuditEntry(
            at=now,
            what=claimed.action,
            outcome=state if decision.kind != "done" else "done (already)",
            detail={"why": decision.reason, "rule": claimed.rule, "by": self.owner_id}
            | ({"request_ids": ",".join(rids)} if rids else {}),
        )
        if decision.kind == "done":
            for message in actions.completion_notices(claimed, decision.reason):
                self._publish(message)
        self._close(claimed, state, entry)  # type: ignore[arg-type]
        if decision.report:
            alert = operator_alert(ACTION_SKIPPED, claimed, decision.reason)
            self._publish(alert)
        result: Result = "done" if decision.kind == "done" else state  # type: ignore[assignment]
        return _outcome(claimed, result, decision.reason, sent)

    def _failure(
        self,
        claimed: Timer,
        now: datetime,
        error: CloudError,
        sent: tuple[str, ...],
        step: str,
        *,
        rids: list[str] | None = None,
    ) -> Outcome:
        """After a failed try (attempt already counted): retry later, or fail for good."""
        if claimed.attempts >= self.settings.max_attempts:
            entry = AuditEntry(
                at=now,
                what=claimed.action,
                outcome="failed",
                detail={
                    "why": f"{step} failed {claimed.attempts} times: {error}",
                    "rule": claimed.rule,
                    "request_ids": ",".join(rids or []),
                    "by": self.owner_id,
                },
            )
            self._close(claimed, "failed", entry)
            self._publish(
                operator_alert(ACTION_FAILED, claimed, str(error), attempts=str(claimed.attempts))
            )
            return _outcome(claimed, "failed", str(error), sent, tuple(rids or ()))
        backoff = self.settings.retry_after * 2 ** max(claimed.attempts - 1, 0)
        self._commit(
            claimed,
            lambda cur: cur.model_copy(
                update={"lease_owner": self.owner_id, "lease_until": now + backoff}
            ),
        )
        return _outcome(
            claimed, "retry", f"{error} (attempt {claimed.attempts}, next after {backoff})", sent
        )

    def _close(
        self, claimed: Timer, state: Literal["done", "failed", "skipped", "gone"], entry: AuditEntry
    ) -> None:
        def finish(cur: Timer) -> Timer:
            if (
                cur.state == "pending"
                and cur.since == claimed.since
                and cur.due_at == claimed.due_at
            ):
                return close(cur, state, entry)
            # a newer run began meanwhile: keep it, only record what happened
            return _release(
                cur.model_copy(update={"history": (*cur.history, entry)}), self.owner_id
            )

        self._commit(claimed, finish)

    def _commit(self, claimed: Timer, change: Callable[[Timer], Timer]) -> Timer | None:
        """Write ``change(timer)``; on a conflict re-read and apply it again (a few times)."""
        current: Timer | None = claimed
        for _ in range(5):
            assert current is not None
            if current.lease_owner not in (None, self.owner_id):
                return None  # another sweeper claimed it since (our lease had expired)
            stored = self.store.replace(current, change(current))
            if stored is not None:
                return stored
            current = self._reread(claimed)
            if current is None:
                return None
        return None

    def _reread(self, timer: Timer) -> Timer | None:
        for t in self.store.timers_for(timer.resource_type, timer.resource_id):
            if t.rule == timer.rule:
                return t
        return None


@dataclass
class _PassState:
    cap: int
    project_cap: int
    blocked: bool
    actions: int = 0
    per_project: Counter[str] = field(default_factory=Counter)
    cap_reason: str = ""
    alerts: list[str] = field(default_factory=list)
    unsent: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def try_reserve(self, timer: Timer) -> bool:
        """:meth:`reserve`, answering False instead of raising when a cap is reached."""
        try:
            self.reserve(timer)
        except _CapReached:
            return False
        return True

    def reserve(self, timer: Timer) -> None:
        """Count one destructive action, or stop the sweep when a cap would be passed."""
        if timer.action not in DESTRUCTIVE:
            return
        project = timer.project_id or "-"
        with self.lock:
            if self.stop.is_set():
                raise _CapReached
            if self.actions >= self.cap:
                reason = f"cap of {self.cap} destructive actions per sweep reached"
            elif self.per_project[project] >= self.project_cap:
                reason = (
                    f"cap of {self.project_cap} destructive actions for project {project} reached"
                )
            else:
                self.actions += 1
                self.per_project[project] += 1
                return
            self.cap_reason = self.cap_reason or reason
            self.blocked = True
            self.stop.set()
        raise _CapReached


def _release(timer: Timer, owner: str) -> Timer:
    if timer.lease_owner == owner:
        return timer.model_copy(update={"lease_owner": None, "lease_until": None})
    return timer


def _count_attempt(timer: Timer) -> Timer:
    return timer.model_copy(update={"attempts": timer.attempts + 1})


def _outcome(
    timer: Timer,
    result: Result,
    reason: str = "",
    notices: tuple[str, ...] | list[str] = (),
    request_ids: tuple[str, ...] = (),
) -> Outcome:
    return Outcome(
        resource_type=timer.resource_type,
        resource_id=timer.resource_id,
        rule=timer.rule,
        action=timer.action,
        result=result,
        reason=reason,
        notices=tuple(notices),
        request_ids=request_ids,
        project_id=timer.project_id,
    )


def lease_expired(timer: Timer, now: datetime) -> bool:
    """Whether a claim on ``timer`` no longer holds at ``now``."""
    return timer.lease_until is None or timer.lease_until <= now
