"""A shelve is done when Nova shows it done: Nova answers 202 and shelves afterwards, so the
sweeper follows the server to SHELVED_OFFLOADED (or SHELVED), and reports a fault or a
shelve that does not finish instead of recording it done."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from reclaim.settings import PolicySettings, SweepSettings
from reclaim.sweeper import RecordingNotices, actions
from reclaim.sweeper.cloud import ActionResult, CloudError
from reclaim.sweeper.rules import ServerSnapshot
from reclaim.timers import Timer

NOW = datetime(2026, 3, 20, tzinfo=UTC)


class ShelvingCloud:
    """Nova as the sweeper sees it during a shelve: each read shows the next state."""

    def __init__(self, states: list[tuple[str, str | None]]) -> None:
        self.states: Iterator[tuple[str, str | None]] = iter(states)
        self.last = states[-1]
        self.shelves = 0

    def shelve_server(self, server_id: str) -> ActionResult:
        self.shelves += 1
        return ActionResult(("req-shelve",))

    def server(self, server_id: str) -> ServerSnapshot:
        status, task = next(self.states, self.last)
        return ServerSnapshot(
            id=server_id,
            status=status,
            project_id="p",
            updated_at=NOW,
            locked=False,
            task_state=task,
        )


def run_shelve(cloud: ShelvingCloud, wait: str = "10m") -> tuple[actions.Done, list[float]]:
    slept: list[float] = []
    clock = [0.0]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    ctx = actions.Context(
        cloud=cloud,  # type: ignore[arg-type]
        notices=RecordingNotices(),
        policy=PolicySettings(),
        settings=SweepSettings(shelve_wait=wait),  # type: ignore[arg-type]
        now=NOW,
        reserve=lambda _t: True,
        sleep=sleep,
        clock=lambda: clock[0],
    )
    timer = Timer(
        resource_type="server",
        resource_id="srv-1",
        rule="shelve_stopped",
        action="shelve",
        project_id="p",
        due_at=NOW - timedelta(hours=1),
    )
    return actions.perform(ctx, timer, None), slept


def test_shelve_is_done_once_nova_shows_it_offloaded() -> None:
    cloud = ShelvingCloud(
        [
            ("SHUTOFF", "shelving"),
            ("SHUTOFF", "shelving_image_uploading"),
            ("SHELVED", "shelving_offloading"),
            ("SHELVED_OFFLOADED", None),
        ]
    )
    done, slept = run_shelve(cloud)
    assert cloud.shelves == 1
    assert done.detail == {"status": "SHELVED_OFFLOADED"}
    assert done.summary == "Nova shows it SHELVED_OFFLOADED"
    assert [m.kind for m in done.messages] == ["shelved"]
    assert len(slept) == 3


def test_shelve_without_offload_is_done_when_shelved_with_no_task() -> None:
    done, _ = run_shelve(ShelvingCloud([("SHUTOFF", "shelving"), ("SHELVED", None)]))
    assert done.detail == {"status": "SHELVED"}


@pytest.mark.parametrize("end", [("ERROR", None), ("SHUTOFF", None)], ids=["fault", "reverted"])
def test_a_failed_shelve_is_an_error_not_done(end: tuple[str, str | None]) -> None:
    with pytest.raises(CloudError) as err:
        run_shelve(ShelvingCloud([("SHUTOFF", "shelving"), end]))
    assert not err.value.transient
    assert f"Nova shows it {end[0]}" in str(err.value)
    assert err.value.request_id == "req-shelve"


def test_a_shelve_that_does_not_finish_is_retried_later() -> None:
    with pytest.raises(CloudError) as err:
        run_shelve(ShelvingCloud([("SHUTOFF", "shelving")]), wait="1m")
    assert err.value.transient
    assert "not finished after 1m: SHUTOFF, task shelving" in str(err.value)
