"""oslo.messaging configuration and transports for the bus (threading backend only)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from reclaim.bus.settings import BusSettings
from reclaim.oslo import messaging


def oslo_conf(settings: BusSettings, *, control_exchange: str | None = None) -> Any:
    """A private ``ConfigOpts`` with reclaim's driver options set.

    ``amqp_durable_queues`` decides whether exchanges and queues are declared durable (it
    must match what the cloud's services declare, or RabbitMQ refuses the second
    declaration); ``rabbit_qos_prefetch_count`` bounds the unacknowledged messages held.
    """
    from oslo_config import cfg

    om = messaging()
    from oslo_messaging._drivers import amqp, impl_rabbit

    conf = cfg.ConfigOpts()
    conf([], project="reclaim", validate_default_values=True)
    group = cfg.OptGroup(name="oslo_messaging_rabbit")
    conf.register_group(group)
    conf.register_opts(impl_rabbit.rabbit_opts, group=group)
    conf.register_opts(amqp.amqp_opts, group=group)
    conf.register_opts(om.transport._transport_opts)
    conf.set_override("amqp_durable_queues", settings.durable_queues, group=group)
    conf.set_override("rabbit_qos_prefetch_count", settings.prefetch, group=group)
    if control_exchange:
        conf.set_override("control_exchange", control_exchange)
    return conf


def notification_transport(settings: BusSettings, *, control_exchange: str | None = None) -> Any:
    """A notification transport for ``settings.transport_url``."""
    om = messaging()
    conf = oslo_conf(settings, control_exchange=control_exchange)
    return om.get_notification_transport(conf, url=settings.transport_url)


class BusError(RuntimeError):
    """The broker refused reclaim's queue or its bindings; nothing was consumed."""


def _amqp_url(transport_url: str) -> str | None:
    """The kombu URL of a ``rabbit://`` transport URL's first host (None for other drivers)."""
    parts = urlsplit(transport_url)
    if parts.scheme != "rabbit" or not parts.netloc:
        return None
    return f"amqp://{parts.netloc.split(',')[0]}{parts.path or '/'}"


def check_durability(settings: BusSettings, exchanges: Iterable[str]) -> None:
    """Refuse to start when the broker already holds an exchange (or reclaim's queue) with
    the other durability, before anything is declared. Raises :class:`BusError`.

    Declaring with the wrong durability fails half-way, after oslo has created the
    exchanges the cloud had not declared yet, with reclaim's durability: the cloud's own
    services would then be refused on their next notification. So each existing exchange
    is first found with a passive declare (which creates nothing) and only then declared
    as reclaim would; RabbitMQ answers 406 if the durability differs. Unreachable brokers
    are left to oslo's own reconnect loop.
    """
    import amqp.exceptions
    import kombu

    url = _amqp_url(settings.transport_url)
    if url is None:
        return
    durable = settings.durable_queues
    try:
        conn = kombu.Connection(url, connect_timeout=5)
        conn.connect()
    except Exception:
        return
    with conn:
        for kind, name in [*(("exchange", e) for e in exchanges), ("queue", settings.pool)]:
            channel = conn.channel()
            try:
                if kind == "exchange":
                    channel.exchange_declare(name, "topic", passive=True)
                    channel.exchange_declare(name, "topic", durable=durable, auto_delete=False)
                else:
                    channel.queue_declare(name, passive=True)
                    channel.queue_declare(name, durable=durable, auto_delete=False)
            except amqp.exceptions.NotFound:
                continue  # not there yet: declared with reclaim's durability
            except amqp.exceptions.PreconditionFailed as exc:
                theirs = "non-durable" if durable else "durable"
                fix = (
                    "set bus.durable_queues (RECLAIM_BUS__DURABLE_QUEUES, --durable/--no-durable)"
                    " to the cloud's [oslo_messaging_rabbit] amqp_durable_queues"
                )
                if kind == "queue":
                    fix += (
                        f", or delete queue {name!r} (left by a run with the other setting; "
                        "its messages are lost, run `reclaim reconcile` after)"
                    )
                raise BusError(f"the broker holds {kind} {name!r} {theirs}: {fix} ({exc})") from exc
            finally:
                with contextlib.suppress(Exception):
                    channel.close()
