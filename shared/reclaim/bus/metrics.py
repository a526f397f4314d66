"""Prometheus metrics of the listener (its own registry, so many listeners can coexist)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    """Counters and histograms of one listener."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.received = Counter(
            "reclaim_bus_received", "Messages delivered by the broker", registry=r
        )
        self.applied = Counter(
            "reclaim_bus_applied", "Events whose timer commands were stored", registry=r
        )
        self.ignored = Counter(
            "reclaim_bus_ignored",
            "Events reclaim does not route, or that decide nothing",
            registry=r,
        )
        self.dead_lettered = Counter(
            "reclaim_bus_dead_lettered", "Messages recorded as dead letters", ["stage"], registry=r
        )
        self.requeued = Counter(
            "reclaim_bus_requeued", "Messages requeued because the store failed", registry=r
        )
        self.writes = Counter("reclaim_bus_timer_writes", "Conditional timer writes", registry=r)
        self.apply_latency = Histogram(
            "reclaim_bus_apply_seconds", "Time to store one batch's commands",
            buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.event_latency = Histogram(
            "reclaim_bus_event_to_store_seconds",
            "From the notification's timestamp to its commands being stored",
            buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip

    def serve(self, port: int, host: str = "127.0.0.1") -> Any:
        """Serve ``/metrics`` on ``host:port`` in a daemon thread; returns the server."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server

    def value(self, name: str, **labels: str) -> float:
        """The current value of a sample (tests and the benchmark)."""
        got = self.registry.get_sample_value(name, labels or None)
        return 0.0 if got is None else got
