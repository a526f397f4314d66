"""The ``reclaim`` command line. Each module registers the commands of one area."""

from __future__ import annotations

import contextlib

import typer

from reclaim.cli import (
    bus,
    core,
    mailer,
    notices,
    reconcile,
    run,
    serverless,
    store,
    sweep,
    web,
)

app = typer.Typer(
    name="reclaim",
    help="Event-driven enforcement of a research cloud's resource-recovery policies for OpenStack.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
core.register(app)
bus.register(app)
serverless.register(app)
sweep.register(app)
run.register(app)
reconcile.register(app)
mailer.register(app)
store.register(app)
notices.register(app)
web.register(app)


def _mount_sim() -> None:
    from reclaim_sim.cli import app as sim_app

    app.add_typer(sim_app, name="sim", help="The simulated OpenStack cloud (for tests and demos).")


with contextlib.suppress(ImportError):  # the simulated cloud is optional at run time
    _mount_sim()


def main() -> None:
    """Entry point of the ``reclaim`` console script."""
    app()
