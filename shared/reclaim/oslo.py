"""The one place reclaim imports oslo.messaging, on the threading backend (no eventlet)."""

from __future__ import annotations

import warnings
from types import ModuleType
from typing import Any

_messaging: ModuleType | None = None


def messaging() -> ModuleType:
    """Return ``oslo_messaging`` imported with oslo.service's threading backend selected.

    A bare ``import oslo_messaging`` picks eventlet and prints an EventletDeprecationWarning;
    selecting the threading backend first avoids both. Safe to call many times.
    """
    global _messaging
    if _messaging is None:
        with warnings.catch_warnings():
            # futurist imports eventlet (without patching anything) just to learn whether it
            # is installed, and eventlet warns on import; nothing here uses it.
            warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
            from oslo_service import backend

            try:
                backend.init_backend(backend.BackendType.THREADING)
            except Exception as exc:  # already initialised (by us or by the host process)
                if "already" not in str(exc).lower():
                    raise
            import oslo_messaging

        _quote_every_reserved_character()
        _messaging = oslo_messaging
    return _messaging


def _quote_every_reserved_character() -> None:
    """Let a broker password hold a ``/``.

    oslo's rabbit driver decodes the transport URL's password, then writes it back into
    the URL it hands kombu with ``urllib.parse.quote``, which leaves ``/`` as it is: kombu
    then reads the password's end as the host. The same URL, with every reserved character
    quoted, is what kombu needs.
    """
    from urllib import parse

    from oslo_messaging._drivers import impl_rabbit
    from oslo_utils import netutils

    def transform(
        self: Any,
        url: Any,
        host: Any,
        default_username: str = "",
        default_password: str = "",
        default_hostname: str = "",
    ) -> str:
        transport = url.transport.replace("kombu+", "").replace("rabbit", "amqp")
        user = parse.quote(host.username or default_username, safe="")
        password = parse.quote(host.password or default_password, safe="")
        hostname = netutils.escape_ipv6(host.hostname) or default_hostname
        return f"{transport}://{user}:{password}@{hostname}:{host.port or 5672}/{url.virtual_host or ''}"

    impl_rabbit.Connection._transform_transport_url = transform


def transport(url: str, *, notification: bool = True) -> Any:
    """Build an oslo.messaging transport for ``url`` (``rabbit://``, ``kombu+memory:////``...)."""
    from oslo_config import cfg

    om = messaging()
    conf = cfg.ConfigOpts()
    conf([], project="reclaim", validate_default_values=True)
    if notification:
        return om.get_notification_transport(conf, url=url)
    return om.get_rpc_transport(conf, url=url)
