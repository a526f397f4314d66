"""The mailer's core: one notice in, its mails out, each at most once per address.

For each person a notice resolves to: skip if the ledger says the mail was accepted; else
render, send, and record it once the server accepted it. Any failure (directory, store,
SMTP) raises :class:`Retry` before the notice is acknowledged, so it is redelivered and the
mails already accepted are not sent again. The one window for a duplicate is between the
server's acceptance and the ledger write (milliseconds): a crash exactly there re-sends
that one mail, with the same ``Message-ID``.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError

from reclaim.bus.log import emit
from reclaim.mailer.addresses import AddressBook, DirectoryError
from reclaim.mailer.ledger import MailLedger
from reclaim.mailer.render import Renderer
from reclaim.mailer.smtp import MailSender, Refused, build_mail
from reclaim.notices import NoticeMessage, parse_notice
from reclaim.settings import MailerSettings
from reclaim.store import StoreError


class Retry(Exception):
    """The notice could not be mailed now; redeliver it later."""


@dataclass(frozen=True)
class Delivery:
    """What happened to one mail of a notice."""

    notice_id: str
    kind: str
    address: str
    result: Literal["sent", "already-sent", "refused"]
    subject: str = ""


class Mailer:
    """Turns notice payloads into mails."""

    def __init__(
        self,
        settings: MailerSettings,
        addresses: AddressBook,
        sender: MailSender,
        ledger: MailLedger,
        renderer: Renderer,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.addresses = addresses
        self.sender = sender
        self.ledger = ledger
        self.renderer = renderer
        self.clock = clock

    def handle(self, payload: Mapping[str, Any]) -> list[Delivery]:
        """Mail one notice payload. Raises :class:`Retry` when it must be redelivered."""
        try:
            notice = parse_notice(payload)
        except ValidationError as exc:
            emit("notice_unreadable", logging.ERROR, error=str(exc)[:300], payload=payload)
            return []
        try:
            people = self.addresses.resolve(notice)
        except DirectoryError as exc:
            raise Retry(f"directory: {exc}") from exc
        if not people:
            emit("no_recipient", logging.WARNING, notice_id=notice.notice_id, kind=notice.kind,
                 resource=f"{notice.resource_type}/{notice.resource_id}")  # fmt: skip
        return [self._one(notice, p) for p in people]

    def _one(self, notice: NoticeMessage, person: Any) -> Delivery:
        nid, kind = notice.notice_id, notice.kind
        try:
            if self.ledger.sent(nid, person.address):
                return Delivery(nid, kind, person.address, "already-sent")
        except StoreError as exc:
            raise Retry(f"ledger: {exc}") from exc
        rendered = self.renderer.render(notice, person)
        now = self.clock()
        mail = build_mail(rendered, person, settings=self.settings, mail_id=nid, kind=kind, at=now)
        result: Literal["sent", "refused"] = "sent"
        try:
            self.sender.send(mail)
        except Refused as exc:
            result = "refused"
            emit("mail_refused", logging.ERROR, notice_id=nid, to=person.address, error=str(exc))
        except (smtplib.SMTPException, OSError) as exc:
            raise Retry(f"smtp: {type(exc).__name__}: {exc}") from exc
        try:
            self.ledger.record(nid, person.address, now, kind=kind, outcome=result)
        except StoreError as exc:
            raise Retry(f"ledger: {exc}") from exc
        emit("mail", notice_id=nid, kind=kind, to=person.address, result=result,
             subject=rendered.subject)  # fmt: skip
        return Delivery(nid, kind, person.address, result, rendered.subject)
