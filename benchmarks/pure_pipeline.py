"""Pure parse + policy throughput (events/s on one core), versioned and legacy Nova.

Baseline in the same run: ``json.loads`` of the same bodies (the least any consumer does).
Target: at least 20,000 events/s for parse + policy.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reclaim import routes
from reclaim.settings import PolicySettings

EVENTS = Path(__file__).resolve().parents[1] / "events"
N = 10_000
ROUNDS = 5
TARGET = 20_000


def _bodies(names: list[str]) -> list[str]:
    """N wire bodies (messagingv2 strings), cycling through the samples with fresh ids."""
    samples = [json.loads((EVENTS / f"{n}.json").read_text()) for n in names]
    out = []
    for i in range(N):
        outer = samples[i % len(samples)]
        inner = json.loads(outer["oslo.message"])
        inner["message_id"] = f"m-{i}"
        out.append(json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(inner)}))
    return out


def _rate(fn: Callable[[str], Any], bodies: list[str]) -> float:
    rates = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for b in bodies:
            fn(b)
        rates.append(len(bodies) / (time.perf_counter() - started))
    return statistics.median(rates)


def main() -> None:
    policy = PolicySettings()
    families = {
        "versioned": [
            "nova/instance.power_off.end",
            "nova/instance.shelve.end",
            "nova/instance.power_on.end",
        ],
        "legacy": [
            "nova-legacy/compute.instance.power_off.end",
            "nova-legacy/compute.instance.shelve.end",
            "nova-legacy/compute.instance.power_on.end",
        ],
    }
    for family, names in families.items():
        bodies = _bodies(names)
        baseline = _rate(lambda b: json.loads(json.loads(b)["oslo.message"]), bodies)
        pipeline = _rate(lambda b: routes.commands_for(b, policy), bodies)
        verdict = "ok" if pipeline >= TARGET else "BELOW TARGET"
        print(
            f"   {family:9s} parse+policy {pipeline:9,.0f} ev/s (median of {ROUNDS})"
            f" | json.loads baseline {baseline:9,.0f} ev/s | ratio {pipeline / baseline:.3f}"
            f" | target >= {TARGET:,} ev/s: {verdict}"
        )


if __name__ == "__main__":
    main()
