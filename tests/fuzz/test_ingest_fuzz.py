"""Fuzzing the ingestion path: arbitrary bytes, arbitrary JSON and mutated real samples go
through parse, policy and store; afterwards every read command works and only resources
that valid events named have timers (see :mod:`tests.fuzz.harness`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reclaim.bus.pipeline import Body
from reclaim_sim import SimServer
from tests.fuzz.harness import FUZZ, arbitrary_json, deliver, mutated_samples
from tests.support.reads import point_at_sim


@pytest.fixture(autouse=True, scope="module")
def _cloud(sim_server: SimServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        point_at_sim(sim_server, Path(tmp_path_factory.mktemp("fuzz")), patch)
        yield


@FUZZ
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=4))
def test_arbitrary_bytes(bodies: list[Body]) -> None:
    deliver(bodies)


@FUZZ
@given(st.lists(arbitrary_json(), min_size=1, max_size=4))
def test_arbitrary_json(bodies: list[Body]) -> None:
    deliver(bodies)


@FUZZ
@given(st.lists(mutated_samples(), min_size=1, max_size=6))
def test_mutated_real_samples(bodies: list[Body]) -> None:
    deliver(bodies)
