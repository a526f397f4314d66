"""``reclaim run``: the long-lived service next to an OpenStack cloud."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from reclaim.cli.bus import DurableOpt, StopGraceOpt, bus_or_exit, port_hint
from reclaim.cli.common import (
    clock_or_exit,
    cloud_or_exit,
    fail,
    settings_or_exit,
    store_or_exit,
)
from reclaim.signals import STOP_GRACE


def run(
    store: Annotated[str | None, typer.Option("--store", help="Timer store URL.")] = None,
    cloud: Annotated[
        str | None,
        typer.Option("--cloud", help="clouds.yaml entry (default: run.cloud or OS_CLOUD)."),
    ] = None,
    transport_url: Annotated[
        str | None, typer.Option("--transport-url", help="oslo.messaging transport URL.")
    ] = None,
    durable: DurableOpt = None,
    now: Annotated[
        str | None,
        typer.Option(
            "--now",
            help="Run on another clock: an ISO 8601 time (the real clock moved to read it now) "
            "or a clock URL, read at each sweep (the simulated cloud's: "
            "http://127.0.0.1:PORT/_sim/clock).",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="Log level.")] = "INFO",
    stop_grace: StopGraceOpt = STOP_GRACE,
) -> None:
    """Listen to notifications; sweep every run.sweep_every; reconcile every reconcile.interval.

    Logs are JSON lines on stderr; Prometheus metrics on bus.metrics_port (listener and
    sweeps). Notices go to the same bus as the events it listens to, with the same
    durability (bus.durable_queues). SIGTERM/SIGINT stop it, also while the broker is down:
    within --stop-grace seconds, or it exits anyway with status 70.
    """
    from reclaim import signals
    from reclaim.bus import log
    from reclaim.bus.listener import Listener
    from reclaim.bus.transport import BusError
    from reclaim.cli.sweep import cloud_port, owner_id
    from reclaim.daemon import Daemon
    from reclaim.mailer.ledger import MailLedger
    from reclaim.mailer.preflight import warn_at_start
    from reclaim.reconcile.engine import ReconcileReport
    from reclaim.reconcile.engine import reconcile as reconcile_cloud
    from reclaim.sweeper import OsloNotices, Sweeper

    clock = clock_or_exit(now)
    log.configure(log_level)
    settings = settings_or_exit()
    bus = bus_or_exit(transport_url=transport_url, durable_queues=durable)
    timer_store = store_or_exit(store, settings, create=True)
    warn_at_start("run", settings.mailer, MailLedger(timer_store))
    conn = cloud_or_exit(cloud or settings.run.cloud, "run.cloud")

    def progress(line: str) -> None:  # a project cleanup says what it deletes
        log.emit("progress", command="run", step=line)

    sweeper = Sweeper(
        timer_store, cloud_port(conn, settings, progress), OsloNotices(bus), settings.policy,
        owner_id(), settings.sweep,
        allocation_end_property=settings.reconcile.allocation_end_property,
    )  # fmt: skip
    # Events are received on the run's clock too: the simulation stamps them in its time.
    listener = Listener(bus, timer_store, settings.policy, ingest=settings.ingest, clock=clock)

    def reconcile(now: datetime) -> ReconcileReport:
        return reconcile_cloud(conn, timer_store, settings, now)

    daemon = Daemon(
        listener, sweeper, settings, reconcile=reconcile, clock=clock, stop_grace=stop_grace
    )
    try:
        daemon.run()
    except (OSError, BusError) as exc:
        fail(f"run: {port_hint(exc, bus)}", 1)
    signals.exit_stopped()


def register(app: typer.Typer) -> None:
    """Add ``run`` to ``app``."""
    app.command()(run)
