"""Deadline watching: stop starting work while enough time is left to finish what is in hand."""

from __future__ import annotations

import time

from reclaim.serverless.deadline import Deadline, LocalContext, remaining_seconds


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_work_stops_before_the_deadline_with_the_reserve_left() -> None:
    clock = FakeClock()
    deadline = Deadline.after(60, reserve=10, clock=clock)
    done = 0
    while not deadline.expired():
        clock.now += 7  # one unit of work: claim, verify, act
        done += 1
    assert done == 8  # 56 s used; a ninth unit could end past 60 - 10
    assert deadline.remaining() == 4
    assert deadline.remaining() > 0, "stopped before Lambda would have killed the invocation"
    assert deadline.stop_at == 1000 + 60 - 10


def test_deadline_from_lambda_context() -> None:
    context = LocalContext("sweeper", timeout=30)
    deadline = Deadline.from_context(context, reserve=5)
    assert 29 < deadline.remaining() <= 30
    assert not deadline.expired()
    assert Deadline.from_context(LocalContext("sweeper", timeout=4), reserve=5).expired()


def test_remaining_seconds_of_any_context() -> None:
    context = LocalContext("f", timeout=2)
    left = remaining_seconds(context)
    assert left is not None and 1.5 < left <= 2
    assert remaining_seconds(object()) is None
    time.sleep(0.01)
    assert context.get_remaining_time_in_millis() < 2000
