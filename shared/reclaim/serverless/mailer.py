"""The mailer on Lambda: notice batches from Amazon MQ for RabbitMQ, mailed as ``reclaim mailer`` does.

Each record is an AMQP body in oslo's ``messagingv2`` form (:func:`reclaim.wire.read_envelope`)
whose payload is a notice (:func:`reclaim.notices.parse_notice`); it goes through the same
:class:`reclaim.mailer.Mailer` as on the bus, with the same ledger records in the timer table.
Failures follow the notification function's rule: a record that can never be mailed (not
base64, not an oslo envelope) is dead-lettered into the table and the batch succeeds; a
transient failure (SMTP, Keystone, the store) raises, so Amazon MQ redelivers the whole batch
and the ledger keeps the notices already mailed from going out twice.

A schedule event (``source: aws.events``) runs the daily digest pass instead, when
``mailer.digest`` is on (:meth:`reclaim.mailer.Mailer.send_digests`).

SMTP settings and credentials come from the Secrets Manager secret named by
``MAILER_SECRET``: a JSON object of ``mailer`` settings (``smtp_host``, ``smtp_port``,
``username``, ``password``, ``starttls``, ``sender``, ...) laid over the environment's.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from reclaim.deadletters import DeadLetterSink, dead_letter
from reclaim.mailer import (
    CachedDirectory,
    DirectoryAddresses,
    KeystoneDirectory,
    Mailer,
    MailLedger,
    Renderer,
    SmtpSender,
)
from reclaim.notices import EVENT_PREFIX
from reclaim.notices.context import Site
from reclaim.serverless.events import mq_records
from reclaim.serverless.sweeper import _secret, sweep_time
from reclaim.settings import MailerSettings, Settings
from reclaim.store import DynamoTimerStore
from reclaim.web.links import mail_links
from reclaim.wire import ParseError, read_envelope

log = logging.getLogger("reclaim.serverless")

MAILER_SECRET_VAR = "MAILER_SECRET"


@dataclass
class MailResult:
    """What one invocation did with its notices."""

    received: int = 0
    ignored: int = 0
    deliveries: dict[str, int] = field(default_factory=dict)
    dead_lettered: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The result as the function's JSON response."""
        return {
            "received": self.received,
            "ignored": self.ignored,
            "mails": dict(sorted(self.deliveries.items())),
            "dead_lettered": list(self.dead_lettered),
        }


def mailer_settings(settings: Settings, client: Any = None) -> MailerSettings:
    """The environment's mailer settings with the ``MAILER_SECRET`` secret's fields laid over."""
    secret_id = os.environ.get(MAILER_SECRET_VAR, "")
    if not secret_id:
        return settings.mailer
    given = json.loads(_secret(secret_id, client))
    if not isinstance(given, dict):
        raise ValueError(f"secret {secret_id}: expected a JSON object of mailer settings")
    return MailerSettings.model_validate({**settings.mailer.model_dump(), **given})


def build_mailer(settings: Settings, store: DynamoTimerStore, conn: Any) -> Mailer:
    """The mailer core with Keystone on ``conn``, SMTP from the secret, the ledger in ``store``."""
    m = mailer_settings(settings)
    addresses = DirectoryAddresses(
        CachedDirectory(KeystoneDirectory(conn)),
        fallback=m.fallback_contact,
        operators=m.operators,
        member_roles=m.member_roles,
    )
    site = Site(cloud_name=m.cloud_name, support=m.support, policy_url=m.policy_url)
    # the key that signs the mails' links: the web pages' secret (WEB_SECRET) when named
    from reclaim.serverless.web import secret_key

    web = settings.web.model_copy(update={"secret_key": secret_key(settings)})
    renderer = Renderer(m.templates or None, site, links=mail_links(web))
    return Mailer(m, addresses, SmtpSender(m), MailLedger(store), renderer)


def handle_mq(
    event: Mapping[str, Any],
    mailer: Mailer,
    deadletters: DeadLetterSink,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> MailResult:
    """Mail every notice of an Amazon MQ batch; raises :class:`reclaim.mailer.Retry` to
    have the batch redelivered."""
    result = MailResult()
    for record in mq_records(event):
        result.received += 1
        problem, event_type, payload = record.problem or "no body", None, None
        if record.body is not None:
            try:
                envelope = read_envelope(record.body)
            except ParseError as exc:
                problem = f"unreadable notice: {exc}"
            else:
                event_type, payload, problem = envelope.event_type, envelope.payload, ""
        if payload is None:
            deadletters.keep(
                dead_letter(
                    record.evidence(),
                    stage="decode" if record.body is None else "parse",
                    reason=problem,
                    source=record.source,
                    ref=record.ref,
                    message_id=record.message_id,
                    event_type=event_type,
                    now=clock(),
                )
            )
            result.dead_lettered.append(record.ref)
            log.warning("dead-lettered %s: %s", record.ref, problem)
            continue
        if not str(event_type).startswith(EVENT_PREFIX):
            result.ignored += 1
            continue
        for delivery in mailer.handle(payload):
            result.deliveries[delivery.result] = result.deliveries.get(delivery.result, 0) + 1
    return result


def handle(
    event: Mapping[str, Any],
    mailer: Mailer,
    deadletters: DeadLetterSink,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, Any]:
    """A notice batch, or on a schedule event the digest pass; the function's response."""
    if event.get("source") == "aws.events":
        if not mailer.settings.digest:
            return {"digests": [], "digest": False}
        sent = mailer.send_digests(sweep_time(event, clock))
        return {"digest": True, "digests": [{"to": d.address, "result": d.result} for d in sent]}
    result = handle_mq(event, mailer, deadletters, clock)
    log.info("notices: %s", result.as_json())
    return result.as_json()
