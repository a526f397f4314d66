"""``reclaim sim``: run the simulated cloud."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from reclaim.redact import mask_url
from reclaim.signals import stop_on_signals
from reclaim_sim.scenario import build_cloud, demo_scenario_path
from reclaim_sim.server import ADMIN_CLOUD, SimServer

app = typer.Typer(
    name="sim",
    help="A stateful simulated OpenStack cloud on 127.0.0.1 (Keystone, Nova, Glance, Cinder, "
    "Neutron, Swift) that emits the services' notifications.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _group() -> None:
    """The simulated cloud."""


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: a free one).")] = 0,
    scenario: Annotated[
        Path | None, typer.Option(help="Seed scenario YAML (default: the packaged demo).")
    ] = None,
    clouds_yaml: Annotated[
        Path, typer.Option(help="Where to write the clouds.yaml for this cloud.")
    ] = Path(".reclaim-sim/clouds.yaml"),
    transport_url: Annotated[
        str | None,
        typer.Option(
            help="oslo.messaging transport for notifications, e.g. "
            "rabbit://guest:guest@127.0.0.1:5672/ (default: none emitted)."
        ),
    ] = None,
    driver: Annotated[str, typer.Option(help="messagingv2 or messaging")] = "messagingv2",
    notification_format: Annotated[
        str | None, typer.Option(help="Nova: unversioned, versioned or both.")
    ] = None,
    frozen: Annotated[
        bool, typer.Option(help="Freeze the clock (it then moves only when advanced).")
    ] = False,
    task_seconds: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="How long each step of a Nova server task takes, in real seconds; the "
            "server shows its task state meanwhile (default: the scenario's, else 0: done "
            "when the API answers).",
        ),
    ] = None,
) -> None:
    """Start the simulated cloud and print how to point openstacksdk at it."""
    console = Console(soft_wrap=True)
    source = scenario or demo_scenario_path()
    overrides: dict[str, Any] = {}
    if notification_format:
        overrides["notification_format"] = notification_format
    if task_seconds is not None:
        overrides["task_seconds"] = task_seconds
    if driver not in ("messagingv2", "messaging"):
        raise typer.BadParameter("driver must be messagingv2 or messaging")
    cloud = build_cloud(
        source,
        transport_url=transport_url,
        ticking=not frozen,
        driver="messaging" if driver == "messaging" else "messagingv2",
        **overrides,
    )
    stop = threading.Event()
    with stop_on_signals(stop), SimServer(cloud, port=port) as server:
        path = server.write_clouds_yaml(clouds_yaml).resolve()
        others = [name for name in server.clouds() if name != ADMIN_CLOUD]
        console.print(f"[bold]reclaim sim[/] serving {source} at {server.url}")
        console.print(
            f"  simulated time  {cloud.clock.now():%Y-%m-%d %H:%M:%S} UTC "
            f"({'frozen' if frozen else 'ticking'})"
        )
        shown = mask_url(transport_url) if transport_url else "off (no --transport-url)"
        console.print(f"  notifications   {shown}")
        console.print(f"  clouds.yaml     {path}")
        console.print(f"  clouds          {ADMIN_CLOUD} (admin), {', '.join(others)}")
        console.print("\nPoint openstacksdk or the openstack client at it:")
        console.print(f"  export OS_CLIENT_CONFIG_FILE={path}")
        console.print(f"  export OS_CLOUD={ADMIN_CLOUD}")
        console.print(
            escape(
                '  python -c "import openstack; c = openstack.connect(); '
                'print([s.name for s in c.compute.servers(all_projects=True)])"'
            )
        )
        console.print("  openstack server list --all-projects")
        member = others[0] if others else ADMIN_CLOUD
        console.print(
            f"  OS_CLOUD={member} openstack server stop SERVER   # then: reclaim timers list"
        )
        console.print("\nControl it (no auth, 127.0.0.1 only):")
        console.print(f"  curl -s {server.url}/_sim/")
        console.print(f'  curl -s -XPOST {server.url}/_sim/clock -d \'{{"advance": "14d"}}\'')
        console.print(f"  curl -s '{server.url}/_sim/requests?mutating=1'")
        console.print(
            "\nreclaim's commands read the real clock; give them the simulated one (its "
            "/_sim/clock endpoint; run reads it at every sweep):"
        )
        console.print(f"  reclaim sweep --now {server.url}")
        console.print(f"  reclaim run --now {server.url}")
        console.print(
            "\nProject cleanup runs as a user without the admin role, the clouds.yaml entry "
            "named by sweep.cleanup_cloud; unset, a due cleanup is retried with a growing "
            "pause, then failed with an operator alert. Here, for example:"
        )
        console.print(f"  export RECLAIM_SWEEP__CLEANUP_CLOUD={others[-1] if others else 'ENTRY'}")
        console.print("\nCtrl-C stops it.")
        stop.wait()
    cloud.close()
