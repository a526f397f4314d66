"""``reclaim replay`` of many deliveries for one resource: the merge must stay O(N log N).

One server stopped, shelved and started again 8,000 times (every event for the same
resource, so all of them fold into one item in one merge), written to a file and replayed
in-process as ``reclaim replay FILE`` (embedded store). Sizes 1,000 to 8,000 show how the
time grows: doubling N should about double it.

Baseline in the same run: ``json.loads`` of the same file and of each event's
``oslo.message`` (the least any reader does). Target: 8,000 events in under 2 s.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from reclaim.cli import app

EVENTS = Path(__file__).resolve().parents[1] / "events"
SIZES = tuple(
    int(n) for n in os.environ.get("RECLAIM_BENCH_SIZES", "1000,2000,4000,8000").split(",")
)
ROUNDS = 3
TARGET_SECONDS = 2.0
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
#: The same server goes round these states (each sample's payload names that server).
CYCLE = ("nova/instance.power_off.end", "nova/instance.shelve.end", "nova/instance.power_on.end")


def stream(n: int) -> list[dict[str, Any]]:
    """``n`` messagingv2 bodies for one server, a minute apart, in the order sent."""
    inners = [
        json.loads(json.loads((EVENTS / f"{c}.json").read_text())["oslo.message"]) for c in CYCLE
    ]
    server = inners[0]["payload"]["nova_object.data"]["uuid"]
    out = []
    for i in range(n):
        inner = json.loads(json.dumps(inners[i % len(inners)]))
        inner["payload"]["nova_object.data"]["uuid"] = server
        inner["message_id"] = f"m-{i}"
        inner["timestamp"] = (START + timedelta(minutes=i)).strftime("%Y-%m-%d %H:%M:%S.%f")
        out.append({"oslo.version": "2.0", "oslo.message": json.dumps(inner)})
    return out


def _median(fn: Any) -> float:
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    runner = CliRunner()
    with tempfile.TemporaryDirectory() as tmp:
        for n in SIZES:
            path = Path(tmp) / f"one-resource-{n}.json"
            path.write_text(json.dumps(stream(n)))

            def parse_only(path: Path = path) -> None:
                for outer in json.loads(path.read_text()):
                    json.loads(outer["oslo.message"])

            def replay(path: Path = path) -> None:
                result = runner.invoke(app, ["replay", "--json", str(path)])
                assert result.exit_code == 0, result.output
                assert json.loads(result.stdout), "the stream leaves the server's timers pending"

            baseline = _median(parse_only)
            took = _median(replay)
            verdict = "ok" if took < TARGET_SECONDS else "OVER TARGET"
            target = f" | target < {TARGET_SECONDS:.0f} s: {verdict}" if n == 8000 else ""
            print(
                f"   {n:6,d} events, one server: replay {took:6.2f} s (median of {ROUNDS})"
                f" | json.loads baseline {baseline:6.3f} s | ratio {took / baseline:6.1f}{target}",
                flush=True,
            )


if __name__ == "__main__":
    main()
