"""oslo.messaging configuration and transports for the bus (threading backend only)."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from reclaim.bus.log import emit
from reclaim.bus.settings import BusSettings
from reclaim.oslo import messaging
from reclaim.redact import mask_text, mask_url


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
    """The broker refused reclaim's login, vhost, queue or bindings; nothing was consumed."""


#: The setting every publisher and consumer takes its durability from, as it is named in errors.
DURABILITY_SETTING = (
    "bus.durable_queues (RECLAIM_BUS__DURABLE_QUEUES, --durable/--no-durable), which must "
    "equal the cloud's [oslo_messaging_rabbit] amqp_durable_queues"
)


def _amqp_url(transport_url: str) -> str | None:
    """The kombu URL of a ``rabbit://`` transport URL's first host (None for other drivers)."""
    parts = urlsplit(transport_url)
    if parts.scheme != "rabbit" or not parts.netloc:
        return None
    return f"amqp://{parts.netloc.split(',')[0]}{parts.path or '/'}"


def refusal(transport_url: str, exc: BaseException) -> BusError | None:
    """A one-line :class:`BusError` when ``exc`` is the broker refusing the login or the
    virtual host of ``transport_url`` (a fault no retry mends); None for anything else."""
    import amqp.exceptions

    if isinstance(exc, amqp.exceptions.AccessRefused):
        what = "refused the login (user or password)"
    elif isinstance(exc, amqp.exceptions.NotAllowed):
        what = "refused the virtual host (missing, or no permission on it)"
    else:
        return None
    return BusError(f"the broker at {mask_url(transport_url)} {what}: {mask_text(str(exc))}")


def explain(transport_url: str, exc: BaseException) -> str:
    """One line on a failed connect or publish: a refusal (:func:`refusal`), or a durability
    mismatch with the setting that fixes it, else the error's own text. Pure."""
    refused = refusal(transport_url, exc)
    if refused is not None:
        return str(refused)
    text = mask_text(str(exc))
    if "PRECONDITION_FAILED" in text and "durable" in text:
        return f"{text} (set {DURABILITY_SETTING})"
    return text


def connect(settings: BusSettings, stop: threading.Event, *, retry_max: float = 30.0) -> Any:
    """A kombu connection to the broker of a ``rabbit://`` URL, tried again (backing off up
    to ``retry_max`` seconds) while it is unreachable; None for other drivers or once
    ``stop`` is set. Raises :class:`BusError` when the broker refuses the login or vhost.

    oslo's own connect retries for ever in the calling thread, deaf to SIGTERM: waiting
    here first, on ``stop``, lets a service that was never connected stop at once.
    """
    import kombu

    url = _amqp_url(settings.transport_url)
    if url is None:
        return None
    delay = 1.0
    while not stop.is_set():
        conn = kombu.Connection(url, connect_timeout=5)
        try:
            conn.connect()
            return conn
        except Exception as exc:
            conn.release()
            refused = refusal(settings.transport_url, exc)
            if refused is not None:
                raise refused from exc
            emit("broker_unreachable", logging.WARNING, url=mask_url(settings.transport_url),
                 error=str(exc)[:300], retry_in=delay)  # fmt: skip
        stop.wait(delay)
        delay = min(delay * 2, retry_max)
    return None


def check_durability(
    settings: BusSettings, conn: Any, exchanges: Iterable[str], queues: Iterable[str]
) -> None:
    """Refuse to start when the broker already holds one of ``exchanges`` or ``queues`` with
    the other durability, before anything is declared. Raises :class:`BusError`.

    Declaring with the wrong durability fails half-way, after oslo has created the
    exchanges the cloud had not declared yet, with reclaim's durability: the cloud's own
    services would then be refused on their next notification. So each existing exchange
    is first found with a passive declare (which creates nothing) and only then declared
    as reclaim would; RabbitMQ answers 406 if the durability differs. An exchange not there
    yet is logged (``exchange_created``): reclaim is about to create it with its setting.
    """
    import amqp.exceptions

    durable = settings.durable_queues
    for kind, name in [*(("exchange", e) for e in exchanges), *(("queue", q) for q in queues)]:
        channel = conn.channel()
        try:
            if kind == "exchange":
                channel.exchange_declare(name, "topic", passive=True)
                channel.exchange_declare(name, "topic", durable=durable, auto_delete=False)
            else:
                channel.queue_declare(name, passive=True)
                channel.queue_declare(name, durable=durable, auto_delete=False)
        except amqp.exceptions.NotFound:
            if kind == "exchange":
                emit("exchange_created", logging.WARNING, exchange=name,
                     durable=durable, setting=DURABILITY_SETTING)  # fmt: skip
        except amqp.exceptions.PreconditionFailed as exc:
            theirs = "non-durable" if durable else "durable"
            fix = f"set {DURABILITY_SETTING}"
            if kind == "queue":
                fix += (
                    f"; or delete queue {name!r} (left by a run with the other setting; "
                    "its messages are lost, run `reclaim reconcile` after)"
                )
            raise BusError(f"the broker holds {kind} {name!r} {theirs}: {fix} ({exc})") from exc
        finally:
            with contextlib.suppress(Exception):
                channel.close()


def prepare(
    settings: BusSettings, stop: threading.Event, exchanges: Iterable[str], queues: Iterable[str]
) -> bool:
    """Wait for the broker (:func:`connect`), then :func:`check_durability`. False when
    ``stop`` was set first; raises :class:`BusError` for a refusal or a durability mismatch."""
    if _amqp_url(settings.transport_url) is None:
        return not stop.is_set()
    conn = connect(settings, stop)
    if conn is None:
        return False
    with conn:
        check_durability(settings, conn, exchanges, queues)
    return True
