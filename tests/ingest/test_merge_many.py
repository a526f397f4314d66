"""8,000 deliveries for one server folded at once give the timers of the in-order stream,
whatever their order or batching (the merge is O(N log N); ``benchmarks/replay_one_resource``
times it)."""

from __future__ import annotations

import random
from datetime import timedelta

from reclaim import routes
from reclaim.commands import TimerCommand
from reclaim.settings import PolicySettings
from reclaim.store import open_store
from reclaim.timers import MAX_OBSERVATIONS, Timer, fold_resource
from reclaim.views import pending_rows
from tests.support.builders import T0, server_event

POLICY = PolicySettings()
N = 8000
#: A server that keeps stopping, shelving, starting and pausing, a minute apart; every
#: fifth event repeats the previous state (Nova resends, updates...); it ends stopped.
CYCLE = ("stopped", "stopped", "shelved", "shelved_offloaded", "active", "paused", "suspended")


def deliveries() -> list[list[TimerCommand]]:
    out = []
    for i in range(N):
        state = CYCLE[(i - 1 if i % 5 == 4 else i) % len(CYCLE)] if i < N - 1 else "stopped"
        out.append(routes.decide(server_event(state, T0 + timedelta(minutes=i)), POLICY))
    return out


def one_by_one(stream: list[list[TimerCommand]]) -> dict[str, Timer]:
    """The in-order stream, folded one delivery at a time (the store's smallest batches)."""
    timers: dict[str, Timer] = {}
    closed = None
    for commands in stream:
        timers, closed, _, _ = fold_resource(timers, closed, commands)
    return timers


def at_once(commands: list[TimerCommand]) -> dict[str, Timer]:
    timers, _, _, _ = fold_resource({}, None, commands)
    return timers


def test_eight_thousand_deliveries_at_once_give_the_in_order_streams_timers() -> None:
    stream = deliveries()
    expected = one_by_one(stream)
    assert any(t.state == "pending" for t in expected.values())
    flat = [c for commands in stream for c in commands]
    assert at_once(flat) == expected
    shuffled = flat[:]
    random.Random(15).shuffle(shuffled)
    assert at_once(shuffled) == expected
    assert at_once(flat + flat[: N // 2]) == expected  # redelivered halfway: no change
    late = stream[:]
    random.Random(16).shuffle(late)
    batches: dict[str, Timer] = {}
    closed = None
    for start in range(0, N, 97):  # deliveries out of order, in batches of 97
        batch = [c for commands in late[start : start + 97] for c in commands]
        batches, closed, _, _ = fold_resource(batches, closed, batch)
    assert batches == expected
    assert all(len(t.observations) <= MAX_OBSERVATIONS for t in expected.values())


def test_the_store_keeps_the_same_timers_for_eight_thousand_deliveries_in_one_apply() -> None:
    stream = deliveries()
    store = open_store("memory://merge-many")
    result = store.apply([c for commands in reversed(stream) for c in commands])
    assert result.written == len({c.rule for commands in stream for c in commands})
    stored = {t.rule: t for t in store.timers_for("server", stream[0][0].resource_id)}
    expected = one_by_one(stream)
    assert pending_rows(stored.values()) == pending_rows(expected.values())
    assert {r: t.due_at for r, t in stored.items()} == {r: t.due_at for r, t in expected.items()}
