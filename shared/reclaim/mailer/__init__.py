"""``reclaim mailer``: mails the notices reclaim publishes (Keystone addresses, Jinja2, SMTP)."""

from reclaim.mailer.addresses import (
    AddressBook,
    CachedDirectory,
    DirectoryAddresses,
    DirectoryError,
    KeystoneDirectory,
    Person,
)
from reclaim.mailer.consumer import Delivery, Mailer, Retry
from reclaim.mailer.digest import DigestBook
from reclaim.mailer.ledger import MailLedger
from reclaim.mailer.render import Rendered, Renderer
from reclaim.mailer.smtp import SmtpSender, build_mail

__all__ = [
    "AddressBook",
    "CachedDirectory",
    "Delivery",
    "DigestBook",
    "DirectoryAddresses",
    "DirectoryError",
    "KeystoneDirectory",
    "MailLedger",
    "Mailer",
    "Person",
    "Rendered",
    "Renderer",
    "Retry",
    "SmtpSender",
    "build_mail",
]
