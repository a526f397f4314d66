"""The mailer's core: one notice in, its mails out, each at most once per address.

For each person a notice resolves to: skip if the ledger says the mail was accepted; else
render, send, and record it once the server accepted it. Any failure (directory, store,
SMTP) raises :class:`Retry` before the notice is acknowledged, so it is redelivered and the
mails already accepted are not sent again. The one window for a duplicate is between the
server's acceptance and the ledger write (milliseconds): a crash exactly there re-sends
that one mail, with the same ``Message-ID``.

Recipients are isolated from each other: an address that is not one valid addr-spec (a
list, CR/LF, a display name), one that needs SMTPUTF8 from a server that does not offer it,
and one the server refuses for good are skipped; every other recipient still gets the mail,
the operators get one ``mail_undeliverable`` alert naming the skipped addresses, and the
notice is acknowledged. A notice that resolves to nobody (no fallback contact and no
operators configured) is reported as ``notice_undeliverable`` (an error), not retried.

With ``digest`` on, a person's notice is kept for the daily digest instead of mailed
(:mod:`reclaim.mailer.digest`), before the notice is acknowledged; :meth:`Mailer.send_digests`
mails what was kept. Operator alerts are always mailed at once.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError

from reclaim.bus.log import emit
from reclaim.mailer.addresses import AddressBook, BadAddress, DirectoryError, Person, check_address
from reclaim.mailer.digest import DigestBook, digest_id, slot
from reclaim.mailer.ledger import MailLedger
from reclaim.mailer.preflight import DeliveryStamp
from reclaim.mailer.render import Renderer
from reclaim.mailer.smtp import MailSender, Refused, build_mail
from reclaim.notices import MAIL_UNDELIVERABLE, NoticeMessage, parse_notice
from reclaim.notices.context import with_project_name
from reclaim.settings import MailerSettings
from reclaim.store import StoreError


class Retry(Exception):
    """The notice could not be mailed now; redeliver it later."""


class Unsupported(Exception):
    """The mail server lacks what the address needs (SMTPUTF8): it will never take it."""


@dataclass(frozen=True)
class Delivery:
    """What happened to one mail of a notice."""

    notice_id: str
    kind: str
    address: str
    result: Literal["sent", "already-sent", "refused", "kept", "bad-address", "unsupported"]
    subject: str = ""
    #: why the mail could not go (bad-address, unsupported, refused)
    problem: str = ""


#: Results of a mail that will never reach its address: reported to operators.
UNDELIVERABLE = ("bad-address", "unsupported", "refused")


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
        self.digests = DigestBook.beside(ledger) if settings.digest else None
        #: whether this mailer stamped its first accepted mail (:class:`DeliveryStamp`)
        self._stamped = False

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
        notice = self._named(notice)
        if not people:
            emit("notice_undeliverable", logging.ERROR, notice_id=notice.notice_id,
                 kind=notice.kind, resource=f"{notice.resource_type}/{notice.resource_id}",
                 reason="no recipient: no fallback contact and no operators configured")  # fmt: skip
            return []
        out = [self._checked(notice, p) for p in people]
        failed = [d for d in out if d.result in UNDELIVERABLE and d.problem]
        if failed and not notice.operator:
            out += self._report(notice, failed)
        return out

    def _named(self, notice: NoticeMessage) -> NoticeMessage:
        """``notice`` with its project's name from Keystone when it carries none."""
        pid = notice.project_id or (notice.resource_id if notice.resource_type == "project" else "")
        if not pid or notice.detail.get("project_name"):
            return notice
        return with_project_name(notice, self.addresses.project_name(pid))

    def _checked(self, notice: NoticeMessage, person: Person) -> Delivery:
        """The mail of ``notice`` to ``person`` if the address is one addr-spec, else skip it."""
        try:
            address = check_address(person.address)
        except BadAddress as exc:
            emit("mail_bad_address", logging.ERROR, notice_id=notice.notice_id,
                 kind=notice.kind, to=repr(person.address)[:200], error=str(exc))  # fmt: skip
            return Delivery(notice.notice_id, notice.kind, person.address, "bad-address",
                            problem=str(exc))  # fmt: skip
        return self._one(notice, replace(person, address=address.address))

    def _report(self, notice: NoticeMessage, failed: list[Delivery]) -> list[Delivery]:
        """Tell the operators which addresses of ``notice`` got no mail (one alert per notice)."""
        lines = "; ".join(f"{d.address!r}: {d.problem}" for d in failed)
        report = NoticeMessage(
            kind=MAIL_UNDELIVERABLE,
            resource_type=notice.resource_type,
            resource_id=notice.resource_id,
            resource_name=notice.resource_name,
            project_id=notice.project_id,
            action=notice.action,
            due_at=notice.due_at,
            detail={
                **{k: v for k, v in notice.detail.items() if k == "project_name"},
                "reason": f"{len(failed)} address(es) of a {notice.kind} notice got no mail",
                "notice_kind": notice.kind,
                "notice_id": notice.notice_id,
                "addresses": lines[:2000],
            },
            dedupe_key=f"{MAIL_UNDELIVERABLE}|{notice.notice_id}",
            operator=True,
        )
        try:
            operators = self.addresses.resolve(report)
        except DirectoryError as exc:
            raise Retry(f"directory: {exc}") from exc
        if not operators:
            emit("notice_undeliverable", logging.ERROR, notice_id=report.notice_id,
                 kind=report.kind, reason="no operator and no fallback contact configured",
                 addresses=lines[:500])  # fmt: skip
        return [self._checked(report, p) for p in operators]

    def _one(self, notice: NoticeMessage, person: Person) -> Delivery:
        nid, kind = notice.notice_id, notice.kind
        try:
            if self.ledger.sent(nid, person.address):
                return Delivery(nid, kind, person.address, "already-sent")
            if self.digests is not None and not (notice.operator or notice.recipients.operators):
                self.digests.keep(notice, person, self.clock())
                emit("mail_kept_for_digest", notice_id=nid, kind=kind, to=person.address)
                return Delivery(nid, kind, person.address, "kept")
        except StoreError as exc:
            raise Retry(f"ledger: {exc}") from exc
        now = self.clock()
        rendered = self.renderer.render(notice, person, now)
        mail = build_mail(rendered, person, settings=self.settings, mail_id=nid, kind=kind, at=now)
        try:
            result = self._send(mail, nid, person.address)
        except Unsupported as exc:
            problem = f"needs SMTPUTF8, which the mail server does not offer ({exc})"
            emit("mail_unsupported", logging.ERROR, notice_id=nid, kind=kind,
                 to=person.address, error=problem)  # fmt: skip
            return Delivery(nid, kind, person.address, "unsupported", problem=problem)
        try:
            self.ledger.record(nid, person.address, now, kind=kind, outcome=result)
            if result == "sent" and not self._stamped:
                DeliveryStamp.beside(self.ledger).stamp(now)
                self._stamped = True
        except StoreError as exc:
            raise Retry(f"ledger: {exc}") from exc
        emit("mail", notice_id=nid, kind=kind, to=person.address, result=result,
             subject=rendered.subject)  # fmt: skip
        problem = "refused for good by the mail server" if result == "refused" else ""
        return Delivery(nid, kind, person.address, result, rendered.subject, problem)

    def _send(self, mail: Any, mail_id: str, address: str) -> Literal["sent", "refused"]:
        try:
            self.sender.send(mail)
        except Refused as exc:
            emit("mail_refused", logging.ERROR, notice_id=mail_id, to=address, error=str(exc))
            return "refused"
        except smtplib.SMTPNotSupportedError as exc:
            raise Unsupported(str(exc)) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise Retry(f"smtp: {type(exc).__name__}: {exc}") from exc
        return "sent"

    def send_digests(self, now: datetime | None = None) -> list[Delivery]:
        """Mail each address its digest of the slot at or before ``now`` (once per day).

        Raises :class:`Retry` if some digest could not be sent or cleared; calling again
        later finishes the pass without repeating the digests that went out.
        """
        if self.digests is None:
            return []
        at = slot(now or self.clock(), self.settings.digest_hour)
        out: list[Delivery] = []
        failed: list[str] = []
        try:
            addresses = self.digests.addresses()
        except StoreError as exc:
            raise Retry(f"digest: {exc}") from exc
        for address in addresses:
            try:
                delivery = self._digest(address, at)
            except (Retry, StoreError) as exc:
                failed.append(f"{address}: {exc}")
                emit("digest_failed", logging.WARNING, to=address, error=str(exc)[:300])
                continue
            if delivery is not None:
                out.append(delivery)
        if failed:
            raise Retry("digest: " + "; ".join(failed)[:500])
        return out

    def _digest(self, address: str, at: datetime) -> Delivery | None:
        digests = self.digests
        assert digests is not None
        kept = digests.kept(address, at)
        if not kept:
            return None
        did = digest_id(address, at)
        notices = [k.notice for k in kept]
        subject = ""
        result: Literal["sent", "already-sent", "refused"] = "already-sent"
        if not self.ledger.sent(did, address):
            person = kept[-1].person
            now = self.clock()
            rendered = self.renderer.render_digest(notices, person, now)
            subject = rendered.subject
            mail = build_mail(
                rendered, person, settings=self.settings, mail_id=did, kind="digest", at=now
            )
            try:
                result = self._send(mail, did, address)
            except Unsupported as exc:  # kept before the server changed: never deliverable
                emit("mail_unsupported", logging.ERROR, notice_id=did, kind="digest",
                     to=address, error=str(exc))  # fmt: skip
                result = "refused"
            self.ledger.record(did, address, now, kind="digest", outcome=result)
            emit("mail", notice_id=did, kind="digest", to=address, result=result,
                 subject=subject, notices=len(notices))  # fmt: skip
        for n in notices:
            self.ledger.record(n.notice_id, address, at, kind=n.kind, outcome=f"digest {did}")
        digests.clear(address, [n.notice_id for n in notices])
        return Delivery(did, "digest", address, result, subject)
