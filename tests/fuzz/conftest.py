"""The fuzzing suite's simulated cloud, and its tally printed at the end of the run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from reclaim_sim import Cloud, SimClock, SimServer
from tests.fuzz.harness import TALLY


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TALLY:
        terminalreporter.write_line(
            "fuzz: " + ", ".join(f"{name} {count}" for name, count in sorted(TALLY.items()))
        )


@pytest.fixture(scope="session")
def sim_server() -> Iterator[SimServer]:
    cloud = Cloud(clock=SimClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC)))
    with SimServer(cloud) as server:
        yield server
    cloud.close()
