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

        _messaging = oslo_messaging
    return _messaging


def transport(url: str, *, notification: bool = True) -> Any:
    """Build an oslo.messaging transport for ``url`` (``rabbit://``, ``kombu+memory:////``...)."""
    from oslo_config import cfg

    om = messaging()
    conf = cfg.ConfigOpts()
    conf([], project="reclaim", validate_default_values=True)
    if notification:
        return om.get_notification_transport(conf, url=url)
    return om.get_rpc_transport(conf, url=url)
