"""The sweeper on Lambda: a scheduled tick runs one sweep pass until the invocation's deadline.

What the function needs is built once per execution environment (:func:`build_deps`):

* the timer table (``RECLAIM_STORE_URL``, as every function);
* the cloud: ``clouds.yaml`` read from the Secrets Manager secret named by
  ``CLOUDS_YAML_SECRET`` into ``/tmp`` (mode 0600), ``OS_CLIENT_CONFIG_FILE`` pointed at it,
  and the entry ``OS_CLOUD`` opened with openstacksdk. Without the variable (a local run) the
  usual ``clouds.yaml`` search applies;
* the notice publisher: :class:`reclaim.serverless.notices.AmqpNotices` on the broker URL held
  by the secret ``NOTICE_BROKER_SECRET`` (the URL itself, or JSON ``{"url": ...}``), else on
  the bus settings' ``transport_url``, with the exchange's durability from
  ``bus.durable_queues`` (``RECLAIM_BUS__DURABLE_QUEUES``, the template's ``BusDurableQueues``).
  The response names where notices went (``notices_to``, its passwords masked).

Each invocation sweeps as of the schedule event's ``time`` and stops claiming timers
:data:`RESERVE` seconds before Lambda would end it; what is left waits for the next tick.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reclaim.redact import check_url, mask_url
from reclaim.settings import PolicySettings, Settings, SweepSettings
from reclaim.store import DynamoTimerStore
from reclaim.sweeper.cloud import CloudPort
from reclaim.sweeper.notices import NoticePort
from reclaim.sweeper.sweep import Sweeper, SweepReport

#: Seconds kept back from the invocation's end to finish the timer in hand.
RESERVE = 15.0
CLOUDS_SECRET_VAR = "CLOUDS_YAML_SECRET"
NOTICE_SECRET_VAR = "NOTICE_BROKER_SECRET"
#: Where clouds.yaml goes: /tmp is the only writable place on Lambda.
CLOUDS_PATH = Path("/tmp/reclaim/clouds.yaml")


@dataclass(frozen=True)
class SweeperDeps:
    """What one sweep needs: the store, the cloud, the notice publisher and the settings."""

    store: DynamoTimerStore
    cloud: CloudPort
    notices: NoticePort
    policy: PolicySettings
    settings: SweepSettings
    #: Where notices go, for the response (a transport URL, its passwords masked).
    notices_to: str = ""
    #: The Keystone project property holding an allocation's end date.
    allocation_end_property: str = "allocation_end"


def sweep_time(event: Mapping[str, Any], clock: Callable[[], datetime]) -> datetime:
    """The moment to sweep as of: the schedule event's ``time``, else ``clock()``."""
    text = event.get("time") if isinstance(event, Mapping) else None
    if isinstance(text, str):
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return clock()
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    return clock()


def report_json(report: SweepReport) -> dict[str, Any]:
    """A sweep's report as the function's JSON response. Pure."""
    return {
        "started": report.started.isoformat(),
        "dry_run": report.dry_run,
        "counts": dict(sorted(report.counts().items())),
        "notices_sent": report.notices_sent(),
        "alerts_sent": report.alerts_sent(),
        "would_send": report.would_send(),
        "published": dict(sorted(report.published.items())),
        "notices_failed": report.notices_failed,
        "stopped": report.stopped,
        "breaker_opened": report.breaker_opened,
        "breaker_was_open": report.breaker_was_open,
        "alerts": list(report.alerts),
        "unreadable": list(report.unreadable),
        "outcomes": [
            {
                "resource_type": o.resource_type,
                "resource_id": o.resource_id,
                "rule": o.rule,
                "result": o.result,
                "reason": o.reason,
                "notices": list(o.notices),
            }
            for o in report.outcomes
        ],
    }


def handle(
    event: Mapping[str, Any],
    deps: SweeperDeps,
    *,
    owner_id: str,
    stop_at: float | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, Any]:
    """One sweep pass for a tick; no new timer is claimed after ``stop_at`` (monotonic)."""
    sweeper = Sweeper(
        deps.store, deps.cloud, deps.notices, deps.policy, owner_id, deps.settings,
        allocation_end_property=deps.allocation_end_property,
    )  # fmt: skip
    report = sweeper.sweep(sweep_time(event, clock), deadline=stop_at)
    return {**report_json(report), "notices_to": deps.notices_to}


def _secret(secret_id: str, client: Any = None) -> str:
    import boto3

    client = client or boto3.client("secretsmanager")
    value = client.get_secret_value(SecretId=secret_id).get("SecretString")
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"secret {secret_id} holds no text")
    return value


def install_clouds_yaml(secret_id: str, client: Any = None, path: Path = CLOUDS_PATH) -> Path:
    """Write the secret's clouds.yaml to ``path`` (owner-only) and point openstacksdk at it."""
    text = _secret(secret_id, client)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.environ["OS_CLIENT_CONFIG_FILE"] = str(path)
    return path


def notice_url(settings: Settings, client: Any = None) -> str:
    """The broker URL for notices: the secret's, else the bus settings' transport URL."""
    secret_id = os.environ.get(NOTICE_SECRET_VAR, "")
    if not secret_id:
        return settings.bus.transport_url
    text = _secret(secret_id, client).strip()
    url: Any = text
    if text.startswith("{"):
        try:
            url = json.loads(text).get("url")
        except (ValueError, AttributeError):
            url = None
        if not isinstance(url, str):
            raise ValueError(f'secret {secret_id}: not JSON with a "url" string')
    try:
        return check_url(url)
    except ValueError as exc:
        raise ValueError(f"secret {secret_id}: {exc}") from None


def connect_cloud() -> Any:
    """An openstacksdk connection as ``OS_CLOUD``; clouds.yaml from the secret when named.

    Every function that talks to the cloud (sweeper, reconcile, mailer) connects this way.
    """
    import openstack

    secret_id = os.environ.get(CLOUDS_SECRET_VAR, "")
    if secret_id:
        install_clouds_yaml(secret_id)
    return openstack.connect(cloud=os.environ.get("OS_CLOUD") or None)


def build_deps(settings: Settings, store: DynamoTimerStore) -> SweeperDeps:
    """The sweeper's adapters from this environment (secrets read, cloud connected)."""
    from reclaim.serverless.notices import AmqpNotices
    from reclaim.sweeper.cloud import OpenStackCloud

    conn = connect_cloud()
    url = notice_url(settings)
    notices = AmqpNotices(
        url,
        exchange=os.environ.get("NOTICE_EXCHANGE") or "openstack",
        topic=os.environ.get("NOTICE_TOPIC") or "reclaim_notices",
        durable=settings.bus.durable_queues,
    )
    return SweeperDeps(
        store, OpenStackCloud(conn), notices, settings.policy, settings.sweep, mask_url(url),
        settings.reconcile.allocation_end_property,
    )  # fmt: skip
