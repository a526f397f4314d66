"""The fuzzing harness: hostile inputs through the whole ingestion path, then the checks.

CI runs a bounded slice (:data:`FUZZ`: 25 examples per test, derandomized). A long run:
``FUZZ_EXAMPLES=3000 .venv/bin/python -m pytest tests/fuzz -p no:cacheprovider --timeout=0``
(random each run); either prints at the end how many inputs went through and what became of
them.
"""

from __future__ import annotations

import copy
import json
import os
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from reclaim import routes
from reclaim.bus.metrics import Metrics
from reclaim.bus.pipeline import Body, Pipeline
from reclaim.commands import ResourceType
from reclaim.deadletters import DeadLetterStore
from reclaim.settings import IngestSettings, PolicySettings
from reclaim.store import open_store
from reclaim.wire import ParseError
from tests.support.reads import read_commands

_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]
#: The settings of every fuzz test: the CI slice, or the long run ``FUZZ_EXAMPLES`` asks for.
FUZZ = (
    settings(
        max_examples=int(os.environ["FUZZ_EXAMPLES"]),
        deadline=None,
        suppress_health_check=_SLOW_OK,
    )
    if os.environ.get("FUZZ_EXAMPLES")
    else settings(max_examples=25, deadline=None, suppress_health_check=_SLOW_OK, derandomize=True)
)
#: What the inputs came to, over the whole run.
TALLY: Counter[str] = Counter()

#: When the batches are received: a day after the samples are stamped.
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
POLICY = PolicySettings()
INGEST = IngestSettings()
EVENTS = Path(__file__).resolve().parents[2] / "events"
_FAMILIES = ("allocation", "glance", "keystone", "neutron", "nova", "nova-legacy")


def _flat(path: Path) -> dict[str, Any]:
    outer: dict[str, Any] = json.loads(path.read_text())
    inner = outer.get("oslo.message")
    return json.loads(inner) if isinstance(inner, str) else outer


#: Every real sample of a notification reclaim reads, in its flat (v1) form.
SAMPLES = [_flat(p) for family in _FAMILIES for p in sorted((EVENTS / family).glob("*.json"))]
#: Ids that mutations put in: few, so that events of one resource meet in the merge.
IDS = ("3c1e5a7b-9d2f-4a6c-8e0b-1d3f5a7c9e2b", "b2e1d3c5f7a94d1f8e6a0b1c2d3e4f5a", "x", "")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    """A date as publishers write them, anywhere in the calendar (mostly near the samples)."""
    when = draw(
        st.one_of(
            st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59)),
            st.datetimes(min_value=datetime(2026, 2, 1), max_value=datetime(2026, 3, 3)),
        )
    )
    offset = draw(st.sampled_from(["", "Z", "+00:00", "+14:00", "-12:00", "+0000"]))
    text = when.isoformat(sep=draw(st.sampled_from([" ", "T"]))) + offset
    return draw(st.sampled_from([text, text[:10], when.strftime("%Y-%m-%d %H:%M:%S.%f")]))


def _paths(node: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [here] if here else []
    if isinstance(node, dict):
        for key, value in node.items():
            out.extend(_paths(value, (*here, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out.extend(_paths(value, (*here, index)))
    return out


@st.composite
def mutated_samples(draw: st.DrawFn) -> Body:
    """A real sample with a few of its fields replaced, removed or re-dated, in either wire
    form (the v2 envelope's inner message sometimes garbled too)."""
    body = copy.deepcopy(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 4]))):
        path = draw(st.sampled_from(_paths(body)))
        parent: Any = body
        for step in path[:-1]:
            parent = parent[step]
        key = path[-1]
        kind = draw(st.sampled_from(["value", "delete", "date", "id", "big"]))
        if kind == "delete" and isinstance(parent, dict):
            del parent[key]
        elif kind == "date":
            parent[key] = draw(timestamps())
        elif kind == "id":
            parent[key] = draw(st.sampled_from(IDS))
        elif kind == "big":
            parent[key] = "x" * draw(st.sampled_from([1000, 300_000, 1_100_000]))
        else:
            parent[key] = draw(json_values)
    if draw(st.integers(0, 3)) == 0:
        body["timestamp"] = draw(timestamps())
    form = draw(st.sampled_from(["v1", "v2", "v1", "v2", "v2-garbled"]))
    if form == "v1":
        return json.dumps(body).encode()
    inner = json.dumps(body)
    if form == "v2-garbled":
        cut = draw(st.integers(0, len(inner)))
        inner = inner[:cut] + draw(st.text(max_size=5)) + inner[cut + 1 :]
    return json.dumps({"oslo.version": "2.0", "oslo.message": inner}).encode()


def arbitrary_json() -> st.SearchStrategy[Body]:
    """Any JSON: objects that look a little like notifications, and anything at all."""
    envelope_keys = st.sampled_from(
        ["message_id", "publisher_id", "event_type", "priority", "timestamp", "payload"]
    )
    event_types = st.sampled_from([et for r in routes.ROUTES for et in r.event_types])
    shaped = st.fixed_dictionaries(
        {
            "message_id": st.text(max_size=8),
            "publisher_id": st.text(max_size=8),
            "event_type": event_types,
            "priority": st.sampled_from(["INFO", "info", "AUDIT", "x"]),
            "timestamp": timestamps(),
            "payload": st.dictionaries(st.text(max_size=12), json_values, max_size=6),
        },
        optional={"x": json_values},
    )
    loose = st.dictionaries(envelope_keys | st.text(), json_values, max_size=7)
    return st.one_of(shaped, loose, json_values).map(lambda v: json.dumps(v).encode())


def deliver(bodies: list[Body]) -> None:
    """Run ``bodies`` as one batch through parse, policy and store (the listener's and
    replay's pipeline, received at :data:`NOW`), then check what any operator relies on:

    * every body is stored, ignored or dead-lettered with a reason; nothing raises;
    * every stored timer belongs to a resource a valid event named;
    * ``timers list``, ``plan``, ``sweep --dry-run`` and ``reconcile --dry-run`` succeed.
    """
    store = open_store(f"memory://fuzz-{uuid.uuid4().hex[:12]}")
    letters = DeadLetterStore.beside(store)
    pipeline = Pipeline(store, letters, POLICY, apply_threads=1, handler_retries=0,
                        metrics=Metrics(), ingest=INGEST, clock=lambda: NOW)  # fmt: skip
    try:
        outcome = pipeline.process(bodies)
    finally:
        pipeline.close()
    assert outcome.applied + outcome.ignored + len(outcome.dead_letters) == len(bodies)
    assert all(letter.reason for letter in outcome.dead_letters)

    bounds = INGEST.bounds(NOW)
    named: set[tuple[str, str]] = set()
    for body in bodies:
        try:
            named.update((c.resource_type, c.resource_id)
                         for c in routes.commands_for(body, POLICY, bounds))  # fmt: skip
        except ParseError:
            continue
    kinds = get_args(ResourceType)
    stored = {
        tuple(item["pk"]["S"].split("#", 1))
        for item in store.client.scan(TableName=store.table)["Items"]
        if item["pk"]["S"].split("#", 1)[0] in kinds
    }
    assert stored <= named, stored - named

    if stored:  # the reads depend on the timers alone: without any they would test nothing
        read_commands(f"memory://{store.table}", (NOW + timedelta(days=200)).isoformat())
        TALLY["stores read back"] += 1
    TALLY["inputs"] += len(bodies)
    TALLY["stored"] += outcome.applied
    TALLY["ignored"] += outcome.ignored
    TALLY["dead-lettered"] += len(outcome.dead_letters)
    store.client.delete_table(TableName=store.table)
