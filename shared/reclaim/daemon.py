"""``reclaim run``: the listener and a periodic sweeper (and reconciliation) in one process."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from prometheus_client import Counter, Histogram

from reclaim.bus.listener import Listener
from reclaim.bus.log import emit
from reclaim.reconcile.engine import ReconcileReport
from reclaim.settings import Settings
from reclaim.signals import stop_on_signals
from reclaim.sweeper import Sweeper

Reconcile = Callable[[datetime], ReconcileReport]


class Daemon:
    """Consumes events continuously; sweeps every ``run.sweep_every``; reconciles every
    ``reconcile.interval`` (0: never). SIGTERM or SIGINT: stop consuming, finish the sweep in
    flight (within ``stop_grace`` seconds), exit."""

    def __init__(
        self,
        listener: Listener,
        sweeper: Sweeper,
        settings: Settings,
        *,
        reconcile: Reconcile | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        stop_grace: float | None = None,
    ) -> None:
        self.listener = listener
        self.sweeper = sweeper
        self.settings = settings
        self.reconcile = reconcile
        self.clock = clock
        #: Seconds :meth:`run` may take to stop after a signal, or the process ends anyway.
        self.stop_grace = stop_grace
        self._stop = threading.Event()
        #: Set once the listener consumes (events published before that may find no queue).
        self.ready = threading.Event()
        registry = listener.metrics.registry
        self.sweeps = Counter("reclaim_sweeps", "Sweeps run", ["outcome"], registry=registry)
        self.results = Counter(
            "reclaim_sweep_results",
            "Timers a sweep looked at, by result",
            ["result"],
            registry=registry,
        )
        self.sweep_seconds = Histogram(
            "reclaim_sweep_seconds", "Duration of one sweep", registry=registry
        )
        self.reconciles = Counter(
            "reclaim_reconciles", "Reconciliations run", ["outcome"], registry=registry
        )

    def request_stop(self) -> None:
        """Ask :meth:`run` to stop."""
        self._stop.set()

    def sweep_once(self) -> None:
        """One sweep at the current time; a failure is logged and counted, never fatal."""
        started = time.perf_counter()
        try:
            report = self.sweeper.sweep(self.clock())
        except Exception as exc:  # the next sweep retries; the timers stay pending
            self.sweeps.labels("error").inc()
            emit("sweep_failed", logging.ERROR, error=f"{type(exc).__name__}: {exc}"[:500])
            return
        self.sweep_seconds.observe(time.perf_counter() - started)
        self.sweeps.labels(report.stopped or "complete").inc()
        counts = report.counts()
        for result, n in counts.items():
            self.results.labels(result).inc(n)
        emit("swept", counts=dict(counts), notices=report.notices_sent(), alerts=report.alerts[:5],
             stopped=report.stopped or None)  # fmt: skip

    def reconcile_once(self) -> None:
        """One reconciliation; a failure is logged and counted, never fatal."""
        if self.reconcile is None:
            return
        try:
            result = self.reconcile(self.clock())
        except Exception as exc:
            self.reconciles.labels("error").inc()
            emit("reconcile_failed", logging.ERROR, error=f"{type(exc).__name__}: {exc}"[:500])
            return
        self.reconciles.labels("complete").inc()
        emit("reconciled", drift=result.drift, by_rule=result.by_rule())  # counts: integers
        for warning in result.warnings():
            emit("reconcile_warning", logging.WARNING, warning=warning)

    def run(self) -> None:
        """Start the listener, then sweep (and reconcile) on schedule until told to stop
        (within ``stop_grace`` seconds of the signal, or the process ends anyway:
        :func:`stop_on_signals`)."""
        sweep_every = self.settings.run.sweep_every.total_seconds()
        reconcile_every = self.settings.reconcile.interval.total_seconds()
        with stop_on_signals(self._stop, grace=self.stop_grace):
            self._serve(sweep_every, reconcile_every)

    def _serve(self, sweep_every: float, reconcile_every: float) -> None:
        try:
            self.listener.start(self._stop)
            if self._stop.is_set():  # asked to stop while the broker was unreachable
                return
            self.ready.set()
            next_sweep = time.monotonic()
            next_reconcile = time.monotonic() if reconcile_every > 0 else float("inf")
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_reconcile:
                    self.reconcile_once()
                    next_reconcile = time.monotonic() + reconcile_every
                if now >= next_sweep:
                    self.sweep_once()
                    next_sweep = time.monotonic() + sweep_every
                self._stop.wait(max(0.05, min(next_sweep, next_reconcile) - time.monotonic()))
        finally:
            self.listener.stop()
