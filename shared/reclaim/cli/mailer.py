"""``reclaim mailer``: mail the notices on the bus to the people they concern."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from reclaim.cli.bus import DurableOpt, bus_or_exit
from reclaim.cli.common import (
    clock_or_exit,
    cloud_or_exit,
    fail,
    settings_or_exit,
    store_or_exit,
)
from reclaim.settings import MailerSettings


def mailer(
    bus: Annotated[
        str | None,
        typer.Option("--bus", help="Transport URL (default: mailer, then bus settings)."),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option("--store", help="Timer store URL, where sent mails are recorded."),
    ] = None,
    cloud: Annotated[
        str | None,
        typer.Option("--cloud", help="clouds.yaml entry for Keystone (default: OS_CLOUD)."),
    ] = None,
    smtp_host: Annotated[str | None, typer.Option("--smtp-host", help="SMTP server.")] = None,
    smtp_port: Annotated[int | None, typer.Option("--smtp-port", help="SMTP port.")] = None,
    pool: Annotated[str | None, typer.Option("--pool", help="Listener pool (queue).")] = None,
    durable: DurableOpt = None,
    now: Annotated[
        str | None,
        typer.Option(
            "--now",
            help="Another clock: an ISO 8601 time or a clock URL (the simulated cloud's "
            "http://127.0.0.1:PORT/_sim/clock), for the dates mails count from (a mail sent "
            "after the date it announces says so), links' expiry and the delivery records.",
        ),
    ] = None,
    examples: Annotated[
        Path | None,
        typer.Option(
            "--examples", help="Render a mail of every kind into this directory, then exit."
        ),
    ] = None,
) -> None:
    """Mail the notices published on the bus (Keystone addresses, Jinja2 templates, SMTP)."""
    from reclaim.mailer.render import Renderer
    from reclaim.notices.context import Site
    from reclaim.web.links import mail_links

    settings = settings_or_exit()
    clock = clock_or_exit(now)
    given = {"smtp_host": smtp_host, "smtp_port": smtp_port, "pool": pool, "cloud": cloud}
    m = MailerSettings.model_validate(
        {**settings.mailer.model_dump(), **{k: v for k, v in given.items() if v is not None}}
    )
    site = Site(cloud_name=m.cloud_name, support=m.support, policy_url=m.policy_url)
    renderer = Renderer(m.templates or None, site, links=mail_links(settings.web, clock=clock))
    if examples is not None:
        from reclaim.mailer.examples import example_links, write_examples

        if renderer.links is None:  # no web pages configured: show made-up links
            renderer.links = example_links()

        for path in write_examples(examples, renderer):
            typer.echo(path)
        return

    from reclaim.bus import log
    from reclaim.bus.transport import BusError
    from reclaim.mailer import (
        CachedDirectory,
        DirectoryAddresses,
        KeystoneDirectory,
        Mailer,
        MailLedger,
        SmtpSender,
    )
    from reclaim.mailer.listener import MailerService
    from reclaim.mailer.preflight import warn_at_start

    log.configure("INFO")
    warn_at_start("mailer", m, None)
    timer_store = store_or_exit(store, settings, create=True)
    conn = cloud_or_exit(m.cloud, "mailer.cloud")
    addresses = DirectoryAddresses(
        CachedDirectory(KeystoneDirectory(conn)),
        fallback=m.fallback_contact,
        operators=m.operators,
        member_roles=m.member_roles,
    )
    core = Mailer(m, addresses, SmtpSender(m), MailLedger(timer_store), renderer, clock=clock)
    url = bus or m.transport_url or settings.bus.transport_url
    bus_settings = bus_or_exit(transport_url=url, durable_queues=durable)
    try:
        MailerService(m, core, bus_settings).run()
    except (OSError, BusError) as exc:
        fail(f"mailer: {exc}", 1)
    # Stopped cleanly (nothing in hand, disconnected): exit now. The interpreter's own
    # teardown of the cloud, bus and store libraries took over a second more.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def register(app: typer.Typer) -> None:
    """Add ``mailer`` to ``app``."""
    app.command("mailer")(mailer)
