"""End-to-end bus benchmark: RabbitMQ -> reclaim listener -> dynalite.

1. Throughput: N relevant events are queued, then drained by (a) a no-op oslo batch
   listener and (b) reclaim's listener storing timers in dynalite, on the same broker in
   the same run. Reports events/s of each and their ratio (target >= 0.8). To show
   where the time goes it also drains (c) reclaim's listener with its store writes
   discarded, reports the CPU each drain cost per event in the broker, in this process
   (the listener) and in dynalite, and measures what one conditional PutItem costs the
   client (boto3) and dynalite when nothing else runs.
2. Latency: a steady rate (default 500 events/s) published through oslo; reports the
   p50/p99 from each event's timestamp to its commands being stored (target p99 < 100 ms),
   after a second of warm-up, per round and their median.

Run: ``python benchmarks/bus_pipeline.py [--events 20000] [--rate 500] [--seconds 20]``
(needs RabbitMQ on 127.0.0.1:5672 and ``npm ci`` for dynalite).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

import kombu
import psutil

from benchmarks.sweep_support import count_requests
from reclaim import routes
from reclaim.bus.listener import Listener
from reclaim.bus.publisher import OSLO_TIME, Publisher
from reclaim.bus.settings import BusSettings
from reclaim.bus.transport import notification_transport
from reclaim.commands import TimerCommand
from reclaim.oslo import messaging
from reclaim.settings import PolicySettings
from reclaim.store import DynamoTimerStore, open_store
from reclaim.store.port import ApplyResult
from reclaim.timers import merge
from tests.bus.conftest import nova_event
from tests.support.dynalite import Dynalite

KEY = "versioned_notifications.info"
START = datetime(2026, 3, 1, tzinfo=UTC)
POLICY = PolicySettings()


def ctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


def events(n: int, servers: int, start: datetime) -> list[dict[str, Any]]:
    actions = [("power_off", "stopped"), ("power_on", "active"), ("shelve", "shelved_offloaded")]
    return [
        nova_event(
            f"srv-{i % servers:05d}",
            *actions[(i // servers) % 3],
            start + timedelta(milliseconds=i),
        )
        for i in range(n)
    ]


def fill(settings: BusSettings, pool: str, bodies: list[dict[str, Any]]) -> None:
    """Declare ``pool``'s queue bound like oslo's, and queue the bodies (messagingv2)."""
    with kombu.Connection(settings.transport_url.replace("rabbit://", "amqp://", 1)) as conn:
        exchange = kombu.Exchange("nova", type="topic", durable=True)
        queue = kombu.Queue(pool, exchange, routing_key=KEY, durable=True)
        queue(conn.default_channel).declare()
        producer = conn.Producer()
        for body in bodies:
            wire = json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(body)})
            producer.publish(
                wire, exchange=exchange, routing_key=KEY, content_type="application/json"
            )


def noop_drain(settings: BusSettings, pool: str, n: int) -> float:
    """Seconds a no-op oslo batch listener takes to drain ``n`` queued messages."""
    om = messaging()
    seen = 0
    done = threading.Event()
    first: list[float] = []

    class Noop:
        def info(self, messages: list[Any]) -> None:
            nonlocal seen
            if not first:
                first.append(time.perf_counter())
            seen += len(messages)
            if seen >= n:
                done.set()

    transport = notification_transport(settings)
    server = om.get_batch_notification_listener(
        transport,
        [om.Target(exchange="nova", topic="versioned_notifications")],
        [Noop()],
        executor="threading",
        allow_requeue=True,
        pool=pool,
        batch_size=settings.batch_size,
        batch_timeout=settings.batch_timeout,
    )
    start = time.perf_counter()
    server.start(override_pool_size=settings.executor_threads)
    done.wait(600)
    elapsed = time.perf_counter() - start
    server.stop()
    server.wait()
    transport.cleanup()
    return elapsed


def reclaim_drain(settings: BusSettings, store_url: str, n: int) -> tuple[float, int, Counter[str]]:
    """Seconds reclaim's listener takes to store the commands of ``n`` queued events, the
    timers it changed, and its store requests by operation."""
    store = open_store(store_url)
    calls = count_requests(store)
    listener = Listener(settings, store, PolicySettings())
    start = time.perf_counter()
    listener.start()
    while listener.metrics.value("reclaim_bus_applied_total") < n:
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    writes = int(listener.metrics.value("reclaim_bus_timer_writes_total"))
    listener.stop()
    return elapsed, writes, calls


class DiscardingStore(DynamoTimerStore):
    """The timer store with its writes discarded: what the listener costs without them."""

    def apply(self, commands: Sequence[TimerCommand], *, writers: Any = None) -> ApplyResult:
        return ApplyResult(unchanged=len(commands))


def discarding_drain(settings: BusSettings, store_url: str, n: int) -> float:
    """Seconds reclaim's listener takes over ``n`` queued events when storing costs nothing."""
    real = open_store(store_url)
    listener = Listener(settings, DiscardingStore(real.client, real.table), PolicySettings())
    start = time.perf_counter()
    listener.start()
    while listener.metrics.value("reclaim_bus_applied_total") < n:
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    listener.stop()
    return elapsed


class CpuMeter:
    """CPU seconds used since the last reading by the broker (RabbitMQ's Erlang VM, when it
    runs on this machine), this process (where the listener runs) and the store server."""

    def __init__(self, store_pid: int) -> None:
        self.procs = {"listener": psutil.Process(), "dynalite": psutil.Process(store_pid)}
        broker = next(
            (p for p in psutil.process_iter(["name"]) if p.info["name"] == "beam.smp"), None
        )
        if broker is not None:
            self.procs["broker"] = broker
        self.last = self._now()

    def _now(self) -> dict[str, float]:
        out = {}
        for name, proc in self.procs.items():
            t = proc.cpu_times()
            out[name] = t.user + t.system
        return out

    def take(self) -> dict[str, float]:
        """CPU seconds per process since the previous call."""
        now = self._now()
        spent = {name: now[name] - self.last[name] for name in now}
        self.last = now
        return spent


def per_event(spent: dict[str, float], n: int) -> str:
    parts = [f"{name} {spent[name] * 1000 / n:.2f}" for name in ("broker", "listener", "dynalite")]
    return ", ".join(p for p in parts if not p.endswith(" 0.00"))


def put_cost(
    store_url: str, n: int, threads: int, meter: CpuMeter
) -> tuple[float, dict[str, float]]:
    """Conditional PutItems per second from ``threads`` threads, with items the size of a
    stopped server's and nothing else to do, and the CPU seconds they cost per process."""
    store = open_store(store_url)
    [timer] = [
        t
        for t in (merge(None, [c]) for c in routes.commands_for(events(1, 1, START)[0], POLICY))
        if t is not None and t.state == "pending"
    ]

    def put(i: int) -> None:
        item = store.item_of("server", f"ceiling-{i}", [timer], 1)
        store.client.put_item(
            TableName=store.table, Item=item, ConditionExpression="attribute_not_exists(pk)"
        )

    meter.take()
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(put, range(n)))
    return n / (time.perf_counter() - start), meter.take()


def latency(
    settings: BusSettings, store_url: str, rate: int, seconds: float, warmup: float = 1.0
) -> list[float]:
    """Event-to-store latencies (s) at a steady ``rate`` published through oslo, for the
    events published after the first ``warmup`` seconds (connections and threads start)."""
    samples: list[tuple[datetime, float]] = []
    lock = threading.Lock()

    def observe(times: Any, stored_at: datetime) -> None:
        with lock:
            samples.extend((t, (stored_at - t).total_seconds()) for t in times)

    store = open_store(store_url)
    listener = Listener(settings, store, PolicySettings(), observer=observe).start()
    publisher = Publisher(settings)
    total = int(rate * (warmup + seconds))
    measured_from = datetime.now(UTC) + timedelta(seconds=warmup)
    start = time.perf_counter()
    for i in range(total):
        due = start + i / rate
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        body = nova_event(f"lat-{i % 3000:05d}", "power_off", "stopped", datetime.now(UTC))
        body["timestamp"] = datetime.now(UTC).strftime(OSLO_TIME)
        publisher.publish(body)
    deadline = time.monotonic() + 60
    while len(samples) < total and time.monotonic() < deadline:
        time.sleep(0.05)
    publisher.close()
    listener.stop()
    return [lat for t, lat in samples if t >= measured_from]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--servers", type=int, default=5000)
    ap.add_argument("--rate", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    vhost = f"reclaim-bench-{uuid.uuid4().hex[:6]}"
    ctl("add_vhost", vhost)
    ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    tmp = Path(tempfile.mkdtemp(prefix="bus-bench-"))
    db = Dynalite(tmp / "db").start()
    try:
        base = BusSettings(  # durable, as fill() declares: a cloud that keeps queued events
            transport_url=f"rabbit://guest:guest@127.0.0.1:5672/{vhost}",
            metrics_port=0,
            durable_queues=True,
        )
        meter = CpuMeter(db.pid)
        ratios, noop_rates, reclaim_rates, bounds = [], [], [], []
        for r in range(args.rounds):
            bodies = events(
                args.events, args.servers, datetime(2026, 3, 1, tzinfo=UTC) + timedelta(days=r)
            )
            fill(base, f"noop-{r}", bodies)
            fill(base, f"reclaim-{r}", bodies)
            fill(base, f"discard-{r}", bodies)
            meter.take()
            t_noop = noop_drain(base, f"noop-{r}", args.events)
            cpu_noop = meter.take()
            t_rec, writes, calls = reclaim_drain(
                base.model_copy(update={"pool": f"reclaim-{r}"}), f"{db.url}/bench-{r}", args.events
            )
            cpu_rec = meter.take()
            t_free = discarding_drain(
                base.model_copy(update={"pool": f"discard-{r}"}), f"{db.url}/bench-{r}", args.events
            )
            cpu_free = meter.take()
            puts, cpu_put = put_cost(
                f"{db.url}/ceiling-{r}", calls["PutItem"], base.apply_threads, meter
            )
            noop_rates.append(args.events / t_noop)
            reclaim_rates.append(args.events / t_rec)
            ratios.append(t_noop / t_rec)
            bounds.append(sum(cpu_noop.values()) / sum(cpu_rec.values()))
            print(
                f"round {r}: no-op {args.events / t_noop:,.0f} ev/s, reclaim {args.events / t_rec:,.0f} "
                f"ev/s ({writes} timers changed; store requests: "
                f"{', '.join(f'{op} {k}' for op, k in sorted(calls.items()))}), "
                f"ratio {t_noop / t_rec:.2f}; without store writes {args.events / t_free:,.0f} "
                f"ev/s (ratio {t_noop / t_free:.2f})",
                flush=True,
            )
            print(
                f"         CPU ms per event: no-op {per_event(cpu_noop, args.events)}; reclaim "
                f"{per_event(cpu_rec, args.events)}; without store writes "
                f"{per_event(cpu_free, args.events)}",
                flush=True,
            )
            print(
                f"         one conditional PutItem with nothing else running ({puts:,.0f}/s from "
                f"{base.apply_threads} threads) costs CPU ms: "
                f"{per_event(cpu_put, calls['PutItem'])}",
                flush=True,
            )
        print(
            f"throughput median: no-op {statistics.median(noop_rates):,.0f} ev/s, reclaim "
            f"{statistics.median(reclaim_rates):,.0f} ev/s, ratio {statistics.median(ratios):.2f} "
            f"(target >= 0.8); by CPU per event alone the ratio could reach "
            f"{statistics.median(bounds):.2f} on a machine where CPU is the limit"
        )
        p50s, p99s = [], []
        for r in range(args.rounds):
            lat = latency(
                base.model_copy(update={"pool": f"reclaim-latency-{r}"}),
                f"{db.url}/bench-lat-{r}",
                args.rate,
                args.seconds,
            )
            p50s.append(pct(lat, 0.5))
            p99s.append(pct(lat, 0.99))
            print(
                f"latency round {r} at {args.rate} ev/s for {args.seconds:.0f} s after 1 s of "
                f"warm-up ({len(lat)} events): p50 {p50s[-1] * 1000:.1f} ms, p99 "
                f"{p99s[-1] * 1000:.1f} ms, max {max(lat) * 1000:.1f} ms",
                flush=True,
            )
        print(
            f"latency median: p50 {statistics.median(p50s) * 1000:.1f} ms, p99 "
            f"{statistics.median(p99s) * 1000:.1f} ms (target p99 < 100 ms)"
        )
    finally:
        db.stop()
        ctl("delete_vhost", vhost)


if __name__ == "__main__":
    main()
