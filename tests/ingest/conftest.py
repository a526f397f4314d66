"""Fixtures for ingestion tests: a simulated cloud the read commands can reach."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from reclaim_sim import Cloud, SimClock, SimServer


@pytest.fixture(scope="module")
def sim_server() -> Iterator[SimServer]:
    cloud = Cloud(clock=SimClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC)))
    with SimServer(cloud) as server:
        yield server
    cloud.close()
