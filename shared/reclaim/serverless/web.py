"""``reclaim web`` on Lambda: the same Starlette application behind API Gateway's HTTP API.

Mangum turns an HTTP API event (payload format 2.0, also a Function URL's) into an ASGI
request and the application's answer into the response Lambda returns. What the
application needs is built once per execution environment (:func:`build_app`):

* the settings and the timer table, as every function (``RECLAIM_*``);
* the key that signs mail links and sessions: the Secrets Manager secret named by
  ``WEB_SECRET`` (the key itself, or JSON ``{"secret_key": ...}``), else
  ``RECLAIM_WEB__SECRET_KEY`` (a local run);
* the cloud (approved exemptions are written to a server's metadata; Keystone's address
  for sign-in comes from its clouds.yaml entry unless ``web.keystone_url`` is set) and the
  notice publisher (operator alerts), the sweeper's (:func:`runtime.sweeper_deps`).

Cookies are marked Secure: API Gateway serves https only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from reclaim.serverless.runtime import Runtime, sweeper_deps
from reclaim.settings import Settings

#: The variable naming the secret with the web key.
WEB_SECRET_VAR = "WEB_SECRET"


def secret_key(settings: Settings, client: Any = None) -> str:
    """The web key: the ``WEB_SECRET`` secret's, else the settings' own."""
    secret_id = os.environ.get(WEB_SECRET_VAR, "")
    if not secret_id:
        return settings.web.secret_key
    from reclaim.serverless.sweeper import _secret

    text = _secret(secret_id, client).strip()
    if text.startswith("{"):
        try:
            value = json.loads(text).get("secret_key")
        except (ValueError, AttributeError):
            value = None
        if not isinstance(value, str) or not value:
            raise ValueError(f'secret {secret_id}: not JSON with a "secret_key" string')
        return value
    return text


def build_app(env: Runtime) -> Any:
    """The web application on this environment's settings, table, cloud and notices."""
    from reclaim.sweeper.cloud import OpenStackCloud
    from reclaim.web.app import create_app

    settings = env.settings
    key = secret_key(settings)
    settings = settings.model_copy(
        update={"web": settings.web.model_copy(update={"secret_key": key})}
    )
    deps = sweeper_deps()
    # the sweeper's cloud is the OpenStack adapter, which also writes server metadata
    cloud = deps.cloud if isinstance(deps.cloud, OpenStackCloud) else None
    return create_app(settings, env.store, notices=deps.notices, cloud=cloud, https=True)


def handle(event: Mapping[str, Any], context: Any, app: Any) -> dict[str, Any]:
    """Answer one HTTP API event with ``app`` (no lifespan: the app needs none)."""
    from mangum import Mangum

    response: dict[str, Any] = Mangum(app, lifespan="off")(dict(event), context)
    return response
