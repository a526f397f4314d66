"""Commands that talk to the message bus (``listen``, ``publish``, ``deadletters``...)."""

from __future__ import annotations

import errno
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from reclaim.cli.common import event_files, fail, print_json, settings_or_exit, store_or_exit
from reclaim.cli.output import Column, ColumnOpt, Format, FormatOpt, LongOpt, emit, view_of
from reclaim.cli.resolve import KEYSTONE_ID, by_name, cloud_entry, unique_match
from reclaim.settings import describe_error
from reclaim.signals import STOP_GRACE
from reclaim.views import stamp

if TYPE_CHECKING:
    from reclaim.bus.settings import BusSettings

TransportOpt = Annotated[
    str | None,
    typer.Option(
        "--transport-url",
        help="oslo.messaging transport URL (default: RECLAIM_BUS__TRANSPORT_URL).",
    ),
]
StoreOpt = Annotated[
    str | None,
    typer.Option("--store", help="Timer store URL (default: RECLAIM_STORE_URL or memory://)."),
]
DriverOpt = Annotated[
    str | None, typer.Option("--driver", help="Notification driver: messaging (v1) or messagingv2.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines (-f json).")]
StopGraceOpt = Annotated[
    float,
    typer.Option(
        "--stop-grace",
        min=0.1,
        help="Seconds a stop may take after SIGTERM/SIGINT; a stop still under way then is "
        "abandoned with a stop_overdue line and exit status 70 (messages not acknowledged are "
        "redelivered).",
    ),
]
DurableOpt = Annotated[
    bool | None,
    typer.Option(
        "--durable/--no-durable",
        help="Durable exchanges and queues, as the cloud's amqp_durable_queues "
        "(default: bus.durable_queues, RECLAIM_BUS__DURABLE_QUEUES, false).",
    ),
]


def bus_or_exit(**overrides: Any) -> BusSettings:
    """The bus settings with ``overrides`` (None: not given); bad settings exit 2."""
    from reclaim.settings import load_bus_settings

    try:
        return load_bus_settings(**overrides)
    except Exception as exc:
        fail(f"settings: {describe_error(exc)}")


def port_hint(exc: Exception, settings: BusSettings, flag: str | None = None) -> str:
    """``exc`` as one line; a metrics port already taken names the setting that moves it."""
    if not (isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE):
        return str(exc)
    moved = f"bus.metrics_port (RECLAIM_BUS__METRICS_PORT{', ' + flag if flag else ''})"
    return (
        f"metrics port {settings.metrics_host}:{settings.metrics_port}: {exc.strerror} "
        f"(another reclaim listen or run?); choose another with {moved}, or 0 for none"
    )


def _store(url: str | None, *, create: bool = False) -> Any:
    return store_or_exit(url, settings_or_exit(), create=create)


def listen(
    transport_url: TransportOpt = None,
    pool: Annotated[
        str | None, typer.Option("--pool", help="Listener pool (reclaim's own queue).")
    ] = None,
    exchange: Annotated[
        list[str] | None,
        typer.Option(
            "--exchange", help="Exchange to listen on (repeat; default: the route table's)."
        ),
    ] = None,
    store: StoreOpt = None,
    durable: DurableOpt = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Messages per batch.")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option("--metrics-port", help="Prometheus port on 127.0.0.1 (0: off).")
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="Log level.")] = "INFO",
    stop_grace: StopGraceOpt = STOP_GRACE,
) -> None:
    """Consume OpenStack notifications and store their timers until SIGTERM or SIGINT.

    A message is acknowledged only once its timers are stored; what cannot be used is kept
    as a dead letter (see ``reclaim deadletters``). Logs are JSON lines on stderr.
    """
    from reclaim import signals
    from reclaim.bus import log
    from reclaim.bus.listener import Listener
    from reclaim.bus.transport import BusError
    from reclaim.settings import load_settings

    settings = bus_or_exit(
        transport_url=transport_url, pool=pool, exchanges=tuple(exchange) if exchange else None,
        durable_queues=durable, batch_size=batch_size, metrics_port=metrics_port,
    )  # fmt: skip
    log.configure(log_level)
    try:
        loaded = load_settings()
    except Exception as exc:
        fail(f"settings: {describe_error(exc)}")
    timer_store = _store(store, create=True)
    listener = Listener(
        settings, timer_store, loaded.policy, ingest=loaded.ingest, stop_grace=stop_grace
    )
    try:
        listener.run()
    except (OSError, BusError) as exc:
        fail(f"listen: {port_hint(exc, settings, '--metrics-port')}", 1)
    signals.exit_stopped()


def publish(
    files: Annotated[list[Path], typer.Argument(help="Notification files (JSON object or array).")],
    transport_url: TransportOpt = None,
    driver: DriverOpt = None,
    exchange: Annotated[
        str | None, typer.Option("--exchange", help="Exchange (default: the event type's service).")
    ] = None,
    durable: DurableOpt = None,
) -> None:
    """Send sample notifications to the bus as the OpenStack service would.

    Each goes to its service's exchange with routing key ``<topic>.<priority>``; missing
    ``message_id``/``timestamp`` are filled in, present ones kept.
    """
    from reclaim.bus.publisher import Publisher, normalise
    from reclaim.bus.transport import explain
    from reclaim.wire import ParseError

    settings = bus_or_exit(transport_url=transport_url, driver=driver, durable_queues=durable)
    bodies = list(event_files(files))
    publisher = Publisher(settings)
    sent = 0
    try:
        for path, body in bodies:
            try:
                ex, key = publisher.publish(body, exchange=exchange)
            except ParseError as exc:
                fail(f"{path}: {exc}")
            sent += 1
            event_type = normalise(body).get("event_type")  # either wire form
            typer.echo(f"{path}: {event_type} -> {ex} {key}", err=True)
    except Exception as exc:
        fail(f"publish: {explain(settings.transport_url, exc)}", 1)
    finally:
        publisher.close()
    typer.echo(f"published {sent} notification(s)", err=True)


def _send_allocation(kind: str, project: str, end_date: str | None, allocation_id: str | None,
                     transport_url: str | None, driver: str | None,
                     durable: bool | None) -> None:  # fmt: skip
    from reclaim.bus.publisher import Publisher, allocation_event
    from reclaim.bus.transport import explain
    from reclaim.wire import ParseError, parse_timestamp

    if not KEYSTONE_ID.fullmatch(project):
        if cloud_entry(None) is None:
            fail(
                f"{project!r} is not a Keystone project id (32 hex digits); give the id, e.g. "
                f"`openstack project show {project} -f value -c id`, or set OS_CLOUD to a "
                "clouds.yaml entry to look the name up in Keystone"
            )
        named = by_name("project", project, None)
        if named is None:
            fail(f"{project!r}: neither a Keystone project id nor a project name in Keystone")
        project = named
    if end_date is not None:
        try:
            ends = parse_timestamp(end_date if len(end_date) != 10 else end_date + "T00:00:00Z")
        except ValueError as exc:
            fail(f"--date: {exc}")
        # The listener would dead-letter an end outside the event-time window: say so now.
        ingest = settings_or_exit().ingest
        try:
            ingest.bounds(datetime.now(UTC)).check(ends, "--date")
        except ParseError as exc:
            fail(str(exc))
    settings = bus_or_exit(transport_url=transport_url, driver=driver, durable_queues=durable)
    body = allocation_event(kind, project, end_date=end_date, allocation_id=allocation_id)
    publisher = Publisher(settings)
    try:
        ex, key = publisher.publish(body)
    except Exception as exc:
        fail(f"publish: {explain(settings.transport_url, exc)}", 1)
    finally:
        publisher.close()
    typer.echo(f"allocation.{kind} for {project} -> {ex} {key} (message_id {body['message_id']})")


def allocation_end(
    project: Annotated[
        str, typer.Argument(help="Keystone project id, or its name (looked up with OS_CLOUD).")
    ],
    date: Annotated[
        str | None,
        typer.Option("--date", help="When it ended (YYYY-MM-DD or ISO-8601; default: now)."),
    ] = None,
    allocation_id: Annotated[str | None, typer.Option("--allocation-id")] = None,
    transport_url: TransportOpt = None,
    driver: DriverOpt = None,
    durable: DurableOpt = None,
) -> None:
    """Publish ``allocation.ended`` for a project (clouds whose allocation system emits none)."""
    end = date or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    _send_allocation("ended", project, end, allocation_id, transport_url, driver, durable)


def allocation_renew(
    project: Annotated[
        str, typer.Argument(help="Keystone project id, or its name (looked up with OS_CLOUD).")
    ],
    allocation_id: Annotated[str | None, typer.Option("--allocation-id")] = None,
    transport_url: TransportOpt = None,
    driver: DriverOpt = None,
    durable: DurableOpt = None,
) -> None:
    """Publish ``allocation.renewed`` for a project: its cleanup and warnings are cancelled."""
    _send_allocation("renewed", project, None, allocation_id, transport_url, driver, durable)


DEADLETTER_COLUMNS = (
    Column("id", kind="id"),
    Column("received_at", "received", kind="time"),
    Column("stage"),
    Column("event_type", "event type"),
    Column("reason"),
    Column("body_size", "size", kind="count", table=False),
    Column("state"),
    Column("attempts", kind="count", table=False),
    Column("deliveries", kind="count", table=False),
    Column("exchange", table=False),
    Column("routing_key", table=False),
    Column("message_id", kind="id", table=False),
    Column("source", table=False),
    Column("ref", table=False),
    Column("replayed_at", kind="time", table=False),
    Column("truncated", table=False),
    Column("body_head", table=False),
    Column("body_encoding", table=False),
    Column("body_sha256", table=False),
)


def deadletters_list(
    store: StoreOpt = None,
    all_: Annotated[bool, typer.Option("--all", help="Include replayed ones.")] = False,
    fmt: FormatOpt = Format.table,
    column: ColumnOpt = None,
    long: LongOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """List the dead letters: what could not be used, when, and why."""
    from reclaim.deadletters import DeadLetterStore
    from reclaim.store import StoreError

    letters_store = DeadLetterStore.beside(_store(store))
    try:
        letters = letters_store.list(include_replayed=all_)
    except StoreError as exc:
        fail(f"store: {exc}")
    rows = [
        lt.model_dump(mode="json", exclude={"body"})
        | {
            "received_at": stamp(lt.received_at),
            "replayed_at": stamp(lt.replayed_at),
            "body_head": lt.body[:200],
        }
        for lt in letters
    ]
    title = f"Dead letters ({len(letters)})"
    emit(rows, DEADLETTER_COLUMNS, title, view_of(fmt, column, long, json_out))


def deadletters_replay(
    ids: Annotated[
        list[str] | None,
        typer.Argument(help="Dead letter ids, or prefixes no other id starts with (or --all)."),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Replay every open dead letter.")] = False,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Run dead letters through parse, policy and store again (after a fix).

    A letter that now works is marked replayed; one that still fails keeps its new reason.
    Exits 1 if any still fails.
    """
    from reclaim.bus.replay import replay
    from reclaim.deadletters import DeadLetterStore
    from reclaim.settings import load_settings
    from reclaim.store import StoreError

    if not ids and not all_:
        fail("name dead letter ids, or --all")
    try:
        loaded = load_settings()
    except Exception as exc:
        fail(f"settings: {describe_error(exc)}")
    timer_store = _store(store)
    if ids:
        try:
            known = [
                lt.id for lt in DeadLetterStore.beside(timer_store).list(include_replayed=True)
            ]
        except StoreError as exc:
            fail(f"store: {exc}")
        resolved = [unique_match(given, known, "dead letter") for given in ids]
        missing = [given for given, found in zip(ids, resolved, strict=True) if found is None]
        if missing:
            fail(f"no dead letter {missing[0]} (see reclaim deadletters list)")
        ids = [found for found in resolved if found is not None]
    try:
        results = replay(timer_store, loaded.policy, ids or None, loaded.ingest)
    except (StoreError, KeyError) as exc:
        fail(f"replay: {exc}")
    if json_out:
        print_json(results)
    else:
        for r in results:
            typer.echo(
                f"{r['id']}: {r['outcome']}" + (f" ({r['reason']})" if r.get("reason") else "")
            )
    if any(r["outcome"] != "replayed" for r in results):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the bus commands to ``app``."""
    app.command()(listen)
    app.command()(publish)
    allocation = typer.Typer(help="Publish allocation events.", no_args_is_help=True)
    allocation.command("end")(allocation_end)
    allocation.command("renew")(allocation_renew)
    app.add_typer(allocation, name="allocation")
    deadletters = typer.Typer(help="Messages the listener could not use.", no_args_is_help=True)
    deadletters.command("list")(deadletters_list)
    deadletters.command("replay")(deadletters_replay)
    app.add_typer(deadletters, name="deadletters")
