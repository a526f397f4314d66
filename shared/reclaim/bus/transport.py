"""oslo.messaging configuration and transports for the bus (threading backend only)."""

from __future__ import annotations

from typing import Any

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
