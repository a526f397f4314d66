"""Mail building and SMTP delivery (smtplib; STARTTLS and AUTH as configured)."""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Protocol

from reclaim.mailer.addresses import Person
from reclaim.mailer.render import Rendered
from reclaim.settings import MailerSettings


class Refused(Exception):
    """The server refused the mail for good (5xx): retrying would not help."""


class MailSender(Protocol):
    """Hands a mail to a mail server; returns once it is accepted, raises otherwise."""

    def send(self, message: EmailMessage) -> None: ...


def build_mail(
    rendered: Rendered,
    to: Person,
    *,
    settings: MailerSettings,
    mail_id: str,
    kind: str,
    at: datetime,
) -> EmailMessage:
    """A multipart (text and HTML) mail to one person. Pure given ``at``.

    ``Message-ID`` derives from ``mail_id`` and the address, so a mail sent twice (after a
    crash past the server's acceptance) can be recognised by the receiving side. A
    non-ASCII address is sent with SMTPUTF8 (smtplib asks for it; a server without it
    raises ``SMTPNotSupported``).
    """
    msg = EmailMessage()
    msg["From"] = settings.sender
    # the address was checked (one addr-spec); a name from the directory loses its line breaks
    local, _, domain = to.address.rpartition("@")
    msg["To"] = Address(display_name=" ".join(to.name.split()), username=local, domain=domain)
    msg["Subject"] = settings.subject_prefix + rendered.subject
    msg["Date"] = format_datetime(at)
    digest = hashlib.sha256(to.address.lower().encode()).hexdigest()[:16]
    domain = settings.sender.rpartition("@")[2] or "reclaim"
    msg["Message-ID"] = f"<{mail_id}.{digest}@{domain}>"
    if settings.reply_to:
        msg["Reply-To"] = settings.reply_to
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Reclaim-Notice-Id"] = mail_id
    msg["X-Reclaim-Kind"] = kind
    # non-ASCII bodies quoted-printable: short lines would otherwise go as 8bit, which a
    # server without 8BITMIME need not pass on intact
    msg.set_content(rendered.text, cte=_cte(rendered.text))
    msg.add_alternative(rendered.html, subtype="html", cte=_cte(rendered.html))
    return msg


def _cte(body: str) -> str | None:
    """The transfer encoding of a body: the library's choice for ASCII, else quoted-printable."""
    return None if body.isascii() else "quoted-printable"


class SmtpSender:
    """:class:`MailSender` over smtplib: one connection per mail (simple, robust)."""

    def __init__(self, settings: MailerSettings) -> None:
        self.settings = settings

    def send(self, message: EmailMessage) -> None:
        s = self.settings
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout) as smtp:
            smtp.ehlo()
            if s.starttls:
                context = ssl.create_default_context()
                if not s.tls_verify:
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                smtp.starttls(context=context)
                smtp.ehlo()
            if s.username:
                smtp.login(s.username, s.password)
            try:
                smtp.send_message(message)
            except smtplib.SMTPRecipientsRefused as exc:
                codes = [code for code, _ in exc.recipients.values()]
                if codes and all(500 <= c < 600 for c in codes):
                    raise Refused(str(exc.recipients)) from exc
                raise
