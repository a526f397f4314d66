"""``--now``: an empty or unreadable value is refused; a fixed time or the simulated cloud's
clock runs the commands (``reclaim run`` too) at that time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from reclaim.cli import app
from reclaim.cli.common import clock_or_exit
from reclaim.daemon import Daemon
from reclaim_sim import Cloud, SimClock, SimServer

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
runner = CliRunner()


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    cloud = Cloud(clock=SimClock(START))
    with SimServer(cloud) as server:
        yield server
    cloud.close()


@pytest.mark.parametrize(
    "command", [["sweep", "--dry-run"], ["plan"], ["reconcile"], ["run"], ["mailer"]]
)
@pytest.mark.parametrize("value", ["", "  ", "someday"])
def test_an_empty_or_unreadable_now_is_refused_before_anything_runs(
    command: list[str], value: str
) -> None:
    """``--now "$(curl ...)"`` after a failed curl must not run on the real clock."""
    out = runner.invoke(app, [*command, "--now", value, "--store", "memory://now"])
    assert out.exit_code == 2, out.output
    [line] = out.output.splitlines()
    assert line.startswith("reclaim: error: --now")
    assert ("is empty" if not value.strip() else "not an ISO 8601 time") in line


def test_a_fixed_time_is_the_real_clock_moved_there() -> None:
    clock = clock_or_exit("2026-03-08T09:01:19Z")
    first = clock()
    assert timedelta(0) <= first - datetime(2026, 3, 8, 9, 1, 19, tzinfo=UTC) < timedelta(seconds=5)
    assert clock() >= first  # it moves on as the real clock does


def test_the_simulated_clock_is_read_at_every_call(sim: SimServer) -> None:
    for url in (sim.url, f"{sim.url}/_sim/clock", f"{sim.url}/_sim/clock?format=text"):
        clock = clock_or_exit(url)
        before = clock()
        sim.cloud.clock.advance(timedelta(days=7))
        assert clock() - before == timedelta(days=7)


def test_plan_runs_at_the_simulated_time(sim: SimServer) -> None:
    sim.cloud.clock.set(START)
    out = runner.invoke(app, ["plan", "--now", sim.url, "--store", "memory://now-plan"])
    assert out.exit_code == 0, out.output
    assert out.stdout.startswith("Plan for the next 30d, until 2026-03-31T09:00:00Z: nothing")
    down = runner.invoke(app, ["plan", "--now", "http://127.0.0.1:9/_sim/clock"])
    assert down.exit_code == 2 and "cannot read the clock there" in down.output


def test_run_sweeps_and_reconciles_on_the_clock_it_is_given(
    sim: SimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(sim.write_clouds_yaml(tmp_path / "c.yaml")))
    monkeypatch.setenv("OS_CLOUD", "sim-admin")
    monkeypatch.setenv("RECLAIM_BUS__TRANSPORT_URL", "kombu+memory:////")
    seen: list[datetime] = []

    def run_once(daemon: Any) -> None:  # instead of serving: read the daemon's clock
        seen.append(daemon.clock())

    monkeypatch.setattr(Daemon, "run", run_once)
    # run logs JSON lines to the stderr it starts with: here the runner's, closed afterwards
    monkeypatch.setattr("reclaim.bus.log.configure", lambda level: None)
    sim.cloud.clock.set(START)
    out = runner.invoke(app, ["run", "--now", sim.url, "--store", "memory://now-run"])
    assert out.exit_code == 0, out.output
    assert seen == [START]


@pytest.mark.parametrize("value", ["", "soon"])
def test_timers_list_refuses_an_empty_or_unreadable_bound(value: str) -> None:
    """An empty ``--due-before`` listed everything."""
    out = runner.invoke(app, ["timers", "list", "--due-before", value, "--store", "memory://x"])
    assert out.exit_code == 2
    [line] = out.output.splitlines()
    assert line.startswith("reclaim: error: --due-before")
