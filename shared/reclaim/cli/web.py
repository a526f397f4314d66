"""``reclaim web``: the self-service pages, served by uvicorn on 127.0.0.1 by default."""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Annotated, Any

import typer

from reclaim.cli.bus import bus_or_exit
from reclaim.cli.common import clock_or_exit, cloud_or_exit, fail, settings_or_exit, store_or_exit


def web(
    store: Annotated[str | None, typer.Option("--store", help="Timer store URL.")] = None,
    host: Annotated[
        str | None, typer.Option("--host", help="Address to listen on (default: web.host).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Port to listen on (default: web.port).")
    ] = None,
    cloud: Annotated[
        str | None,
        typer.Option(
            "--cloud",
            help="clouds.yaml entry that approved exemptions are written through, and "
            "whose Keystone people sign in against unless web.keystone_url is set "
            "(default: OS_CLOUD; none: approvals are refused).",
        ),
    ] = None,
    transport_url: Annotated[
        str | None,
        typer.Option("--transport-url", help="Bus for operator alerts (default: bus settings)."),
    ] = None,
    now: Annotated[
        str | None,
        typer.Option(
            "--now",
            help="Another clock: an ISO 8601 time or a clock URL (the simulated cloud's "
            "http://127.0.0.1:PORT/_sim/clock), for links' expiry and the dates shown.",
        ),
    ] = None,
) -> None:
    """Serve the self-service pages: a resource's (mail links), a project's and the operators'.

    Needs web.secret_key (RECLAIM_WEB__SECRET_KEY), the key the mailer signs links with.
    SIGTERM/SIGINT stop it.
    """
    import uvicorn

    from reclaim.signals import stop_on_signals
    from reclaim.sweeper.notices import OsloNotices
    from reclaim.web.app import create_app

    settings = settings_or_exit()
    clock = clock_or_exit(now)
    timer_store = store_or_exit(store, settings)
    named = cloud or os.environ.get("OS_CLOUD")
    conn: Any = None
    if named:
        from reclaim.sweeper.cloud import OpenStackCloud

        conn = OpenStackCloud(cloud_or_exit(named))
    bus = bus_or_exit(transport_url=transport_url)
    try:
        app = create_app(settings, timer_store, notices=OsloNotices(bus), cloud=conn, clock=clock)
    except ValueError as exc:
        fail(f"web: {exc}")
    # people sign in against this cloud's Keystone unless web.keystone_url names another
    app.state.keystone_cloud = named or ""
    bind_host = host or settings.web.host
    bind_port = port or settings.web.port
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=bind_host, port=bind_port, log_level="warning", access_log=False,
            lifespan="off", server_header=False,
        )
    )  # fmt: skip
    stop = threading.Event()
    serving = threading.Thread(target=server.run, name="reclaim-web", daemon=True)
    with stop_on_signals(stop):
        serving.start()
        typer.echo(
            f"reclaim web on http://{bind_host}:{bind_port}/ (links from "
            f"{settings.web.base_url or 'nowhere: web.base_url is not set'}); "
            "SIGTERM or Ctrl-C stops it",
            err=True,
        )
        while serving.is_alive() and not stop.wait(0.2):
            pass
    server.should_exit = True
    serving.join(timeout=10)
    if not server.started and not stop.is_set():
        fail(f"web: could not listen on {bind_host}:{bind_port}", 1)
    # Stopped cleanly: exit now, as the mailer does. The interpreter's teardown of the
    # store, bus and cloud libraries took 7 s more after a stop that took 0.2 s.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def register(app: typer.Typer) -> None:
    """Add ``web`` to ``app``."""
    app.command()(web)
