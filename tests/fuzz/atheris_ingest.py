"""Coverage-guided fuzzing of the ingestion path with atheris (libFuzzer), for long runs.

    .venv/bin/python -m tests.fuzz.atheris_ingest -max_total_time=600 [CORPUS_DIR]

Each input is one body on the wire. The corpus starts from every sample in ``events/``, so
libFuzzer mutates real notifications, guided by the branches they reach in reclaim's parse,
models and policy. Every body goes through the listener's pipeline (parse, policy, store)
into one embedded store, received at the samples' day. A body that makes the pipeline
raise stops the run with that input; every 2,000 inputs the store is checked (no timer of
a resource no valid event named; ``timers list``, ``plan``, ``sweep --dry-run`` and
``reconcile --dry-run`` on the simulated cloud succeed) and the tally printed.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import atheris

with atheris.instrument_imports(include=["reclaim"]):
    from reclaim import routes
    from reclaim.bus.metrics import Metrics
    from reclaim.bus.pipeline import Pipeline
    from reclaim.commands import ResourceType
    from reclaim.deadletters import DeadLetterStore
    from reclaim.settings import IngestSettings, PolicySettings
    from reclaim.store import open_store
    from reclaim.wire import ParseError

import pytest

from reclaim_sim import Cloud, SimClock, SimServer
from tests.fuzz.harness import EVENTS, SAMPLES
from tests.support.reads import point_at_sim, read_commands

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
POLICY = PolicySettings()
INGEST = IngestSettings()
BOUNDS = INGEST.bounds(NOW)
READ_EVERY = 2000
KINDS = get_args(ResourceType)

store = open_store("memory://atheris-ingest")
pipeline = Pipeline(store, DeadLetterStore.beside(store), POLICY, apply_threads=1,
                    handler_retries=0, metrics=Metrics(), ingest=INGEST, clock=lambda: NOW)  # fmt: skip
named: set[tuple[str, str]] = set()
tally: Counter[str] = Counter()


def stored_resources() -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    kwargs: dict[str, Any] = {"TableName": store.table}
    while True:
        page = store.client.scan(**kwargs)
        for item in page["Items"]:
            kind, _, rid = item["pk"]["S"].partition("#")
            if kind in KINDS:
                out.add((kind, rid))
        if "LastEvaluatedKey" not in page:
            return out
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def check_reads() -> None:
    strays = stored_resources() - named
    assert not strays, f"timers of resources no valid event named: {sorted(strays)[:5]}"
    read_commands(f"memory://{store.table}", (NOW + timedelta(days=200)).isoformat())
    tally["read checks"] += 1
    print("atheris: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.items())), flush=True)


def one_input(data: bytes) -> None:
    outcome = pipeline.process([data])
    tally["inputs"] += 1
    tally["stored"] += outcome.applied
    tally["ignored"] += outcome.ignored
    tally["dead-lettered"] += len(outcome.dead_letters)
    if outcome.applied:
        with contextlib.suppress(ParseError):
            named.update((c.resource_type, c.resource_id)
                         for c in routes.commands_for(data, POLICY, BOUNDS))  # fmt: skip
    if tally["inputs"] % READ_EVERY == 0:
        check_reads()


def seed(corpus: Path) -> None:
    for index, sample in enumerate(SAMPLES):
        (corpus / f"sample-{index}.v1.json").write_text(json.dumps(sample))
        wrapped = {"oslo.version": "2.0", "oslo.message": json.dumps(sample)}
        (corpus / f"sample-{index}.json").write_text(json.dumps(wrapped))


def main() -> None:
    args = sys.argv[:]
    if not any(not a.startswith("-") for a in args[1:]):
        corpus = Path(tempfile.mkdtemp(prefix="reclaim-corpus-"))
        args.append(str(corpus))
    corpus = Path(next(a for a in args[1:] if not a.startswith("-")))
    corpus.mkdir(parents=True, exist_ok=True)
    if not any(corpus.iterdir()):
        seed(corpus)
    cloud = Cloud(clock=SimClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC)))
    server = SimServer(cloud).start()
    patch = pytest.MonkeyPatch()
    point_at_sim(server, Path(tempfile.mkdtemp(prefix="reclaim-sim-")), patch)
    print(f"atheris: corpus {corpus} (seeded from {EVENTS})", flush=True)
    atheris.Setup(args, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
