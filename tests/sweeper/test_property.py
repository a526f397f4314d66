"""A property over random histories: whatever the events (late, out of order), the sweep
times and the mail deliveries (late, or never), no action fires before its first notice
reached someone plus the rule's longest notice lead, and none fires on an exempt server."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reclaim import routes
from reclaim.mailer.ledger import MailLedger
from reclaim.notices import NoticeMessage
from reclaim.settings import PolicySettings, SweepSettings
from reclaim.store import open_store
from reclaim.sweeper import ActionResult, ServerSnapshot, Sweeper
from reclaim.sweeper.notices import owner_notice
from reclaim.sweeper.rules import STATUS_OF_VM_STATE
from tests.support.builders import SERVER, T0, server_event

POLICY = PolicySettings()
LEAD = {"shelve": max(POLICY.shelve_notices), "delete": max(POLICY.delete_notices)}
DAY = timedelta(days=1)
#: How many actions each example saw (the property must not hold only vacuously).
ACTED: list[int] = []


@dataclass
class World:
    """The server's true history, what Nova is asked to do, and the mail deliveries."""

    states: list[tuple[datetime, str]]
    exempt_from: datetime | None
    project: str
    acted: list[tuple[str, datetime]] = field(default_factory=list)
    delivered: dict[str, datetime] = field(default_factory=dict)
    now: datetime = T0

    def state_at(self, when: datetime) -> tuple[datetime, str] | None:
        past = [(t, s) for t, s in self.states if t <= when]
        return past[-1] if past else None


class Cloud:
    """The live server as Nova would answer at the world's current time."""

    def __init__(self, world: World) -> None:
        self.world = world

    def server(self, server_id: str) -> ServerSnapshot | None:
        w = self.world
        current = w.state_at(w.now)
        if current is None or current[1] == "deleted":
            return None
        since, state = current
        exempt = w.exempt_from is not None and w.exempt_from <= w.now
        return ServerSnapshot(
            id=server_id, status=STATUS_OF_VM_STATE.get(state, state.upper()),
            project_id=w.project, updated_at=since, locked=False, vm_state=state,
            metadata={"reclaim:exempt": "true"} if exempt else {},
        )  # fmt: skip

    def _act(self, action: str, state: str) -> ActionResult:
        w = self.world
        w.acted.append((action, w.now))
        w.states.append((w.now, state))
        w.states.sort(key=lambda x: x[0])
        return ActionResult(("req-prop",))

    def shelve_server(self, server_id: str) -> ActionResult:
        return self._act("shelve", "shelved_offloaded")

    def delete_server(self, server_id: str) -> ActionResult:
        return self._act("delete", "deleted")

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a server rule called {name}")


class Mail:
    """Takes the sweeper's notices; each reaches someone after a drawn delay, or never."""

    def __init__(self, world: World, fates: list[float | None]) -> None:
        self.world = world
        self.fates = iter(fates)
        self.queue: list[tuple[datetime, NoticeMessage]] = []

    def publish(self, message: NoticeMessage) -> None:
        if message.operator:
            return
        fate = next(self.fates, 0.0)  # past the drawn fates: delivered at once
        if fate is not None:
            self.queue.append((self.world.now + fate * DAY, message))

    def deliver(self, ledger: MailLedger) -> None:
        due = [(t, m) for t, m in self.queue if t <= self.world.now]
        self.queue = [(t, m) for t, m in self.queue if t > self.world.now]
        for t, m in due:
            ledger.record(m.notice_id, "u@example.org", t, kind=m.kind, outcome="sent")
            self.world.delivered.setdefault(m.notice_id, t)


events = st.lists(
    st.tuples(
        st.sampled_from(["stopped", "suspended", "active", "shelved_offloaded"]),
        st.floats(0, 60),  # days after the previous event
        st.floats(0, 40),  # days the event takes to reach reclaim
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@example(  # stopped, then shelved by reclaim, then deleted: every notice delivered at once
    history=[("stopped", 1.0, 0.0)], steps=[3.0] * 80, fates=[], exempt_after=None
)
@example(  # the event arrives 30 days late, the first mail a week after it went out
    history=[("stopped", 1.0, 30.0)], steps=[2.0] * 60, fates=[7.0], exempt_after=None
)
@given(
    history=events,
    steps=st.lists(st.floats(0.5, 12), min_size=10, max_size=40),
    fates=st.lists(st.one_of(st.none(), st.floats(0, 6)), min_size=0, max_size=40),
    exempt_after=st.one_of(st.none(), st.floats(0, 200)),
)
def test_no_action_before_its_warning_period_or_on_an_exempt_server(
    history: list[tuple[str, float, float]],
    steps: list[float],
    fates: list[float | None],
    exempt_after: float | None,
) -> None:
    store = open_store(f"memory://sweep-prop-{uuid.uuid4().hex[:12]}")
    project = next(
        c.project_id for c in routes.decide(server_event("stopped", T0), POLICY) if c.project_id
    )
    world = World(
        states=[(T0 - 400 * DAY, "active")],
        exempt_from=None if exempt_after is None else T0 + exempt_after * DAY,
        project=project,
    )
    arrivals: list[tuple[datetime, Any]] = []
    at = T0
    for state, gap, lag in history:
        at += gap * DAY
        world.states.append((at, state))
        arrivals.append((at + lag * DAY, server_event(state, at)))
    world.states.sort(key=lambda x: x[0])
    mail = Mail(world, fates)
    ledger = MailLedger(store)
    sweeper = Sweeper(
        store, Cloud(world), mail, POLICY, "prop",  # type: ignore[arg-type]
        SweepSettings(retry_sleep=0, parallelism=1, min_notice_lead=timedelta(0)),
    )  # fmt: skip
    for step in steps:
        world.now += step * DAY
        for _arrived, n in [a for a in arrivals if a[0] <= world.now]:
            store.apply(routes.decide(n, POLICY))
        arrivals = [a for a in arrivals if a[0] > world.now]
        mail.deliver(ledger)
        done = len(world.acted)
        sweeper.sweep(world.now)
        for action, when in world.acted[done:]:
            assert world.exempt_from is None or when < world.exempt_from, "acted on exempt"
            rule = "shelve" if action == "shelve" else "delete-shelved"
            (timer,) = [t for t in store.timers_for("server", SERVER) if t.rule == rule]
            ids = [owner_notice(timer, n).notice_id for n in timer.notices]
            firsts = [world.delivered[i] for i in ids if i in world.delivered]
            assert firsts, f"{action} at {when} with no notice delivered"
            assert when >= min(firsts) + LEAD[action], (action, when, min(firsts))
    ACTED.append(len(world.acted))


def test_the_property_saw_actions() -> None:
    """Runs after the property (same module, file order): some histories led to actions."""
    assert sum(ACTED) > 0, ACTED
