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

A server that changed after its timer's start (Nova moves ``updated_at`` on a rename, a
lock, metadata) but is still in the rule's state is not acted on: its timer is restated
with the rule's period restarting from the change, its notices to be given again. The
write is conditional on the run the sweep claimed: if an event ended or moved it
meanwhile, or another sweeper took it, the restatement is dropped.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from reclaim.mailer.ledger import MailLedger
from reclaim.notices.kinds import OPERATOR_KINDS
from reclaim.settings import PolicySettings, SweepSettings
from reclaim.store import DynamoTimerStore
from reclaim.store.quarantine import Quarantine
from reclaim.sweeper import actions
from reclaim.sweeper.breaker import Breaker
from reclaim.sweeper.cloud import CloudError, CloudPort
from reclaim.sweeper.notices import (
    ACTION_FAILED,
    ACTION_HELD,
    ACTION_SKIPPED,
    CAP_REACHED,
    CLEANUP_UNCONFIRMED,
    NOTICES_UNDELIVERED,
    NoticeMessage,
    NoticePort,
    operator_alert,
    owner_notice,
    unreadable_alert,
)
from reclaim.sweeper.rules import (
    ACT,
    UNCONFIRMED,
    Decision,
    action_date,
    delivery_hold,
    next_work,
    notices_due,
    restart_period,
    warning_lead,
)
from reclaim.timers import AuditEntry, Notice, Timer, close, mark_notice_sent

#: Actions that change or remove people's resources (capped, blocked by the breaker).
DESTRUCTIVE = actions.DESTRUCTIVE
#: Actions this sweeper carries out; other due timers stay pending and are reported.
SUPPORTED = actions.SUPPORTED
#: The lease owner that marks an action held back for its notice lead time.
NOTICE_HOLD = "hold:notice-lead"
#: The lease owner that marks an action held for a reason its audit names (looked at again
#: when the lease ends).
HELD = "hold:recheck"

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
    "would-hold",
    "would-restart",
    "held",
    "restarted",
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
    #: What the bus took during the pass, by kind: warnings, the notices of finished
    #: actions and operator alerts alike (a dry run publishes nothing).
    published: Counter[str] = field(default_factory=Counter)

    def counts(self) -> Counter[str]:
        return Counter(o.result for o in self.outcomes)

    def notices_sent(self) -> int:
        """Notices to people the bus took: warnings and what finished actions report."""
        return sum(n for kind, n in self.published.items() if kind not in OPERATOR_KINDS)

    def alerts_sent(self) -> int:
        """Operator alerts the bus took."""
        return sum(n for kind, n in self.published.items() if kind in OPERATOR_KINDS)

    def would_send(self) -> int:
        """A dry run's warnings that a real sweep would publish now."""
        return sum(len(o.notices) for o in self.outcomes) if self.dry_run else 0


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
        allocation_end_property: str = "allocation_end",
    ) -> None:
        self.store = store
        self.cloud = cloud
        self.notices = notices
        self.policy = policy
        self.owner_id = owner_id
        self.settings = settings or SweepSettings()
        self.breaker = Breaker(store)
        self.ledger = MailLedger(store)
        self.allocation_end_property = allocation_end_property
        self._sleep = sleep
        self._lock = threading.Lock()
        #: The running pass's count of what the bus took (its report's ``published``).
        self._published: Counter[str] = Counter()
        #: One hold at a time, so that a resource's rules held for one cause alert once.
        self._holding = threading.Lock()

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
        with self._lock:
            self._published = report.published
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
        with self._lock:
            self._published[message.kind] += 1

    def _handle(self, timer: Timer, now: datetime, dry: bool, state: _PassState) -> Outcome:
        floor = self.settings.min_notice_lead
        if (
            timer.lease_until is not None
            and timer.lease_until > now
            and not _stale_wait(timer, now, floor)
        ):
            held = (
                held_reason(timer) or "notice lead time"
                if (timer.lease_owner or "").startswith("hold:")
                else "retry backoff"
                if timer.attempts
                else f"claimed by {timer.lease_owner}"
            )
            return _outcome(timer, "leased", f"{held} until {timer.lease_until.isoformat()}")
        sending = notices_due(timer, now, floor)
        date = action_date(timer, floor)
        action_due = date is not None and date <= now and not timer.pending_notices()
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
            return self._dry(timer, now, sending, act, idle, idle_result, state)
        if not sending and not act:
            if action_due:
                return _outcome(timer, idle_result, idle)
            after = next_work(timer, floor)
            if after is None or after <= now:
                return _outcome(timer, "waiting", "")
            # stored due times fell behind a schedule moved forward: look again at its next step
            why = f"next step at {after.isoformat()} (warning period)"
            holding = self.store.replace(
                timer, timer.model_copy(update={"lease_owner": NOTICE_HOLD, "lease_until": after})
            )
            return _outcome(timer, "leased" if holding else "contended", why)
        claimed = self.store.replace(
            timer,
            timer.model_copy(
                update={
                    "lease_owner": self.owner_id,
                    "lease_until": state.clock(now) + self.settings.lease,
                }
            ),
        )
        if claimed is None:
            return _outcome(timer, "contended", "changed or claimed by another sweeper")
        if sending:
            return self._warn(claimed, now, sending)
        if claimed.notices:
            hold = delivery_hold(claimed, now, self._first_delivery(claimed, now))
            if hold is not None:
                alert = (
                    operator_alert(NOTICES_UNDELIVERED, claimed, hold.reason)
                    if hold.alert
                    else None
                )
                return self._hold(claimed, now, hold.reason, hold.until, alert)
        return self._act(claimed, now, state, ())

    def _first_delivery(self, timer: Timer, now: datetime) -> datetime | None:
        """When the run's first notice reached someone (the mail ledger). Reads one notice at
        a time, in the order they were sent, and stops at a delivery old enough to let the
        action go: an earlier one could only let it go too."""
        lead = warning_lead(timer)
        sent = sorted(
            (n for n in timer.notices if n.sent_at is not None), key=lambda n: n.sent_at or now
        )
        first: datetime | None = None
        for n in sent:
            at = self.ledger.first_delivery([owner_notice(timer, n).notice_id])
            if at is not None:
                first = at if first is None else min(first, at)
                if first + lead <= now:
                    break
        return first

    def _warn(
        self, claimed: Timer, now: datetime, sending: list[tuple[Notice, datetime]]
    ) -> Outcome:
        """Re-check the resource live, then publish the due notices, each stating its date.

        The same re-check as before the action: a stale or forged event (wrong owner, exempt,
        state changed, allocation not confirmed) mails nobody.
        """
        try:
            decision, _live = self._recheck(claimed, now)
        except CloudError as exc:
            self._unclaim(claimed)
            return _outcome(claimed, "waiting", f"re-check before notice: {exc}")
        if decision.kind not in ("act",):
            return self._settle(claimed, now, decision, (), before_notice=True)
        sent: list[str] = []
        for n, date in sending:
            self._publish(owner_notice(claimed, n, date, now))
            sent.append(n.kind)

        def record(cur: Timer) -> Timer:
            for n, date in sending:
                cur = mark_notice_sent(cur, n, now)
                entry = cur.history[-1]
                detail = {
                    **entry.detail,
                    "announces": date.isoformat(),
                    "notice_id": owner_notice(cur, n).notice_id,
                    "why": f"published; action not before {date:%Y-%m-%d %H:%M}",
                }
                entry = entry.model_copy(update={"outcome": "published", "detail": detail})
                cur = cur.model_copy(update={"history": (*cur.history[:-1], entry)})
            after = next_work(cur, self.settings.min_notice_lead)
            if after is not None and after > now:
                return cur.model_copy(update={"lease_owner": NOTICE_HOLD, "lease_until": after})
            return _release(cur, self.owner_id)

        stored = self._commit(claimed, record)
        if stored is None:
            return _outcome(claimed, "waiting", "timer changed while notifying", sent)
        last = sending[-1][1]
        return _outcome(
            claimed, "notified", f"action not before {last.isoformat()} (warning period)", sent
        )

    def _hold(
        self,
        claimed: Timer,
        now: datetime,
        reason: str,
        until: datetime | None,
        alert: NoticeMessage | None,
    ) -> Outcome:
        """Keep a due action pending for ``reason``: audited (once per reason), operators
        alerted once per resource and reason (a project's cleanup and its dependents' scans
        waiting on one unconfirmed allocation make one alert), looked at again at ``until``
        (default: after ``sweep.recheck_held``)."""
        with self._holding:  # a sibling held meanwhile is seen by the check below
            return self._hold_one(claimed, now, reason, until, alert)

    def _hold_one(
        self,
        claimed: Timer,
        now: datetime,
        reason: str,
        until: datetime | None,
        alert: NoticeMessage | None,
    ) -> Outcome:
        end = until or now + self.settings.recheck_held
        fresh = held_reason(claimed) != reason
        if fresh and alert is not None and self._sibling_held(claimed, reason):
            alert = None  # operators heard of this resource and reason already

        def change(cur: Timer) -> Timer:
            update: dict[str, object] = {"lease_owner": HELD, "lease_until": end}
            if fresh:
                entry = AuditEntry(
                    at=now,
                    what=cur.action,
                    outcome="held",
                    detail={"why": reason, "rule": cur.rule, "by": self.owner_id},
                )
                update["history"] = (*cur.history, entry)
            return cur.model_copy(update=update)

        if self._commit(claimed, change) is None:
            return _outcome(claimed, "waiting", "timer changed while holding")
        if fresh and alert is not None:
            with contextlib.suppress(NoticeFailed):
                self._publish(alert)
        return _outcome(claimed, "held", f"{reason} (next look {end.isoformat()})")

    def _sibling_held(self, timer: Timer, reason: str) -> bool:
        """Whether another pending rule of the timer's resource is held for ``reason``."""
        return any(
            t.rule != timer.rule and t.state == "pending" and held_reason(t) == reason
            for t in self.store.timers_for(timer.resource_type, timer.resource_id)
        )

    def _dry(
        self,
        timer: Timer,
        now: datetime,
        sending: list[tuple[Notice, datetime]],
        act: bool,
        idle: str,
        idle_result: Result,
        state: _PassState,
    ) -> Outcome:
        kinds = tuple(n.kind for n, _d in sending)
        if not act and not kinds:
            return _outcome(timer, idle_result if idle else "waiting", idle)
        try:
            decision, live = self._recheck(timer, now)
            if decision.kind == "act" and act:
                preview = actions.preview(self._ctx(now), timer, live)
        except CloudError as exc:
            return _outcome(timer, "waiting", str(exc), kinds)
        if decision.kind == "restart":
            return _outcome(timer, "would-restart", decision.reason)
        if decision.kind != "act":
            return _outcome(timer, "would-skip", f"{decision.kind}: {decision.reason}")
        if not act:
            return _outcome(timer, "would-notify", "", kinds)
        if timer.notices:
            hold = delivery_hold(timer, now, self._first_delivery(timer, now))
            if hold is not None:
                return _outcome(timer, "would-hold", hold.reason)
        if not state.try_reserve(timer):
            # the caps count in a dry run too: show where a real sweep would stop
            return _outcome(timer, "blocked", f"a real sweep stops here: {state.cap_reason}")
        return _outcome(timer, "would-act", f"{decision.reason}; {preview}", kinds)

    def _ctx(self, now: datetime, state: _PassState | None = None) -> actions.Context:
        return actions.Context(
            cloud=self.cloud,
            notices=self.notices,
            policy=self.policy,
            settings=self.settings,
            now=now,
            reserve=state.try_reserve if state is not None else (lambda _t: True),
            end_property=self.allocation_end_property,
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
        with self._heartbeat(claimed, now, state) as lost:
            return self._tries(claimed, now, state, sent, lost)

    @contextlib.contextmanager
    def _heartbeat(self, claimed: Timer, now: datetime, state: _PassState) -> Iterator[Lost]:
        """Renew the claim every third of ``sweep.lease`` while an action runs (a project
        cleanup can take minutes); the yielded event is set if the claim was lost, and the
        action's cloud then refuses further calls."""
        lost = Lost()
        stop = threading.Event()
        period = max(self.settings.lease.total_seconds() / 3, 0.01)

        def beat() -> None:
            while not stop.wait(period):
                try:
                    current = self._reread(claimed)
                    if current is None or current.lease_owner != self.owner_id:
                        lost.set()
                        return
                    until = state.clock(now) + self.settings.lease
                    self.store.replace(current, current.model_copy(update={"lease_until": until}))
                except Exception:  # a store hiccup: the next beat tries again
                    continue

        thread = threading.Thread(target=beat, name=f"lease-{claimed.resource_id}", daemon=True)
        thread.start()
        try:
            yield lost
        finally:
            stop.set()
            thread.join()

    def _tries(
        self,
        claimed: Timer,
        now: datetime,
        state: _PassState,
        sent: tuple[str, ...],
        lost: Lost,
    ) -> Outcome:
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
                ctx = replace(self._ctx(now, state), cloud=_Guarded(self.cloud, lost))
                result = actions.perform(ctx, claimed, live)
                break
            except CloudError as exc:
                error = exc
                if exc.request_id and step == "action":
                    rids.append(exc.request_id)
                claimed = self._commit(claimed, _count_attempt) or claimed
                if not exc.transient or claimed.attempts >= self.settings.max_attempts:
                    break
        if lost.is_set():
            why = "claim lost to another sweeper while acting; it carries on alone"
            return _outcome(claimed, "contended", why, sent, tuple(rids))
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
        *,
        before_notice: bool = False,
    ) -> Outcome:
        """Close, hold, restart or release a timer the re-check did not let act (or warn
        about)."""
        if decision.kind == "wait":
            # keep the claim for one lease: the next sweep after it looks again
            return _outcome(claimed, "waiting", decision.reason, sent)
        if decision.kind == "hold":
            unsure = claimed.action == "cleanup" or decision.reason.startswith(UNCONFIRMED)
            kind = CLEANUP_UNCONFIRMED if unsure else ACTION_HELD
            alert = operator_alert(kind, claimed, decision.reason) if decision.report else None
            return self._hold(claimed, now, decision.reason, None, alert)
        if decision.kind == "restart":
            return self._restart(claimed, now, decision, sent)
        state = {"done": "done", "skip": "skipped", "gone": "gone"}[decision.kind]
        entry = AuditEntry(
            at=now,
            what=claimed.action,
            outcome=state if decision.kind != "done" else "done (already)",
            detail={"why": decision.reason, "rule": claimed.rule, "by": self.owner_id}
            | ({"request_ids": ",".join(rids)} if rids else {}),
        )
        if decision.kind == "done" and not before_notice:
            for message in actions.completion_notices(claimed, decision.reason):
                self._publish(message)
        self._close(claimed, state, entry)  # type: ignore[arg-type]
        if decision.report:
            alert = operator_alert(ACTION_SKIPPED, claimed, decision.reason)
            self._publish(alert)
        result: Result = "done" if decision.kind == "done" else state  # type: ignore[assignment]
        return _outcome(claimed, result, decision.reason, sent)

    def _restart(
        self, claimed: Timer, now: datetime, decision: Decision, sent: tuple[str, ...]
    ) -> Outcome:
        """Restate the claimed run with the rule's period restarted at ``decision.since``
        (audited), unless the run changed meanwhile: then leave it as it is now."""
        changed = decision.since
        assert changed is not None
        floor = self.settings.min_notice_lead
        restated: list[Timer] = []

        def change(cur: Timer) -> Timer:
            restated.clear()
            if not _same_run(cur, claimed):
                return _release(cur, self.owner_id)  # an event or a sweeper came first
            new = restart_period(cur, changed)
            entry = AuditEntry(
                at=now,
                what=cur.action,
                outcome="restarted",
                detail={
                    "why": decision.reason,
                    "rule": cur.rule,
                    "by": self.owner_id,
                    "since": new.since.isoformat() if new.since else "",
                    "due_at": new.due_at.isoformat() if new.due_at else "",
                },
            )
            new = new.model_copy(update={"history": (*new.history, entry)})
            restated.append(new)
            after = next_work(new, floor)
            if after is not None and after > now:
                return new.model_copy(update={"lease_owner": NOTICE_HOLD, "lease_until": after})
            # work due already: keep the claim for its lease, so the next sweep does it
            return new

        stored = self._commit(claimed, change)
        if stored is None or not restated:
            why = f"timer changed meanwhile, not restarted ({decision.reason})"
            return _outcome(claimed, "contended", why, sent)
        due = stored.due_at.isoformat() if stored.due_at else "-"
        return _outcome(stored, "restarted", f"{decision.reason}; now due {due}", sent)

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
            if _same_run(cur, claimed):
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


class Lost(threading.Event):
    """Set when this sweeper no longer holds the claim on the timer it acts on."""


class _Guarded:
    """The cloud as an action sees it: once the claim is lost, every further call fails (a
    non-transient error), so a second sweeper that took the timer over acts alone."""

    def __init__(self, cloud: CloudPort, lost: Lost) -> None:
        self._cloud = cloud
        self._lost = lost

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._cloud, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            if self._lost.is_set():
                raise CloudError(f"{name}: claim lost to another sweeper", transient=False)
            return target(*args, **kwargs)

        return call


@dataclass
class _PassState:
    cap: int
    project_cap: int
    blocked: bool
    started: float = field(default_factory=time.monotonic)
    actions: int = 0
    per_project: Counter[str] = field(default_factory=Counter)
    cap_reason: str = ""
    alerts: list[str] = field(default_factory=list)
    unsent: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def clock(self, now: datetime) -> datetime:
        """The pass's ``now`` moved on by the time the pass has run (leases count from it)."""
        return now + timedelta(seconds=time.monotonic() - self.started)

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


def _same_run(current: Timer, claimed: Timer) -> bool:
    """Whether ``current`` is still the pending run that was claimed (no event ended or
    moved it since)."""
    return (
        current.state == "pending"
        and current.since == claimed.since
        and current.due_at == claimed.due_at
    )


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


def _stale_wait(timer: Timer, now: datetime, floor: timedelta) -> bool:
    """Whether the timer's wait for its next step no longer holds: its schedule moved (a
    corrected date) and work is due now."""
    if timer.lease_owner != NOTICE_HOLD:
        return False
    after = next_work(timer, floor)
    return after is not None and after <= now


def held_reason(timer: Timer) -> str:
    """The reason of the timer's latest hold, while it is the last thing its audit says."""
    if timer.history and timer.history[-1].outcome == "held":
        return timer.history[-1].detail.get("why", "")
    return ""


def planned_date(timer: Timer, floor: timedelta = timedelta(0)) -> tuple[datetime | None, str]:
    """When the timer's action will happen as things stand, and why it waits if held: the
    date its notices announced (:func:`action_date`), or the end of its hold when later.
    What ``reclaim plan`` and the web pages show. Pure."""
    date = action_date(timer, floor)
    held = held_reason(timer)
    if date is not None and held and timer.lease_until is not None:
        date = max(date, timer.lease_until)
    return date, held


def lease_expired(timer: Timer, now: datetime) -> bool:
    """Whether a claim on ``timer`` no longer holds at ``now``."""
    return timer.lease_until is None or timer.lease_until <= now
