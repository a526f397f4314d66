"""Fixtures of the notice and mailer tests: a real SMTP server (aiosmtpd), a RabbitMQ vhost,
the simulated cloud's Keystone, a timer table on dynalite."""

from __future__ import annotations

import email
import email.policy
import itertools
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from reclaim.bus.settings import BusSettings
from reclaim.mailer import (
    DirectoryAddresses,
    KeystoneDirectory,
    Mailer,
    MailLedger,
    Renderer,
    SmtpSender,
)
from reclaim.mailer.listener import MailerService
from reclaim.settings import MailerSettings
from reclaim.store import DynamoTimerStore, open_store
from reclaim_sim import Cloud, SimClock, SimServer
from tests.bus.conftest import rabbitmqctl
from tests.support.dynalite import Dynalite

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
_n = itertools.count(1)


@dataclass
class MailClock:
    """The mailer's clock in these tests: the simulated time the notices are about (mails
    count their days from it, and say so when their date has passed), set by the test."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mailbox:
    """What the SMTP server accepted. ``delay`` holds each DATA before replying; a mail whose
    client went away meanwhile is not kept (the client never heard it was accepted)."""

    def __init__(self) -> None:
        self.mails: list[EmailMessage] = []
        self.delay = 0.0
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        import asyncio

        if self.delay:
            await asyncio.sleep(self.delay)
            if server.transport is None or server.transport.is_closing():
                return "451 client gone"
        raw = envelope.content
        # a mail sent with SMTPUTF8 has UTF-8 headers, which the bytes parser would not decode
        msg = (
            email.message_from_bytes(raw, policy=email.policy.default)
            if raw.isascii()
            else email.message_from_string(raw.decode("utf-8"), policy=email.policy.default)
        )
        assert isinstance(msg, EmailMessage)
        with self._lock:
            self.mails.append(msg)
        return "250 OK"

    def received(self) -> list[tuple[str, str]]:
        """(To address, Subject) of every mail, in arrival order (the subject as a mail
        client shows it: a header folded before its first word unfolds to a leading blank)."""
        with self._lock:
            return [(m["To"].addresses[0].addr_spec, str(m["Subject"]).strip()) for m in self.mails]

    def wait(self, count: int, timeout: float = 120) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.mails) >= count:
                    return list(self.mails)
            time.sleep(0.05)
        raise AssertionError(f"{count} mails expected, got {self.received()}")


@dataclass
class Smtp:
    """An aiosmtpd server on 127.0.0.1 that can be stopped and started on the same port."""

    port: int
    box: Mailbox = field(default_factory=Mailbox)
    controller: Controller | None = None
    #: whether the server offers SMTPUTF8 (aiosmtpd does not by default)
    smtputf8: bool = False

    def start(self) -> None:
        self.controller = Controller(
            self.box, hostname="127.0.0.1", port=self.port, enable_SMTPUTF8=self.smtputf8
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    server = Smtp(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def keystone() -> Iterator[SimServer]:
    """The simulated cloud (its Keystone holds users with e-mail addresses)."""
    cloud = Cloud(clock=SimClock(START))
    with SimServer(cloud) as server:
        yield server
    cloud.close()


@dataclass
class People:
    project_id: str
    owner_id: str
    owner_email: str
    member_id: str
    member_email: str
    project_name: str = ""


@pytest.fixture
def people(keystone: SimServer) -> People:
    """A project with an owner and a second member, both with addresses."""
    n = next(_n)
    idn = keystone.cloud.identity
    p = idn.create_project(f"mail-proj-{n}")
    owner = idn.create_user(f"owner-{n}", email=f"owner{n}@example.org")
    member = idn.create_user(f"member-{n}", email=f"member{n}@example.org")
    idn.grant(owner.id, p.id, "member")
    idn.grant(member.id, p.id, "reader")
    return People(
        p.id, owner.id, f"owner{n}@example.org", member.id, f"member{n}@example.org", p.name
    )


@pytest.fixture
def table(dynalite: Dynalite) -> DynamoTimerStore:
    return open_store(f"{dynalite.url}/notices-{os.getpid()}-{next(_n)}")


@pytest.fixture(scope="session")
def notices_vhost() -> Iterator[str]:
    name = f"reclaim-notices-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    try:
        rabbitmqctl("await_startup", timeout=30)
    except Exception as exc:
        pytest.skip(f"RabbitMQ is not available: {exc}")
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    yield name
    rabbitmqctl("delete_vhost", name, check=False)


@pytest.fixture
def bus_url(notices_vhost: str) -> str:
    return f"rabbit://guest:guest@127.0.0.1:5672/{notices_vhost}"


@pytest.fixture
def mailer_settings(smtp: Smtp) -> MailerSettings:
    return MailerSettings(
        smtp_port=smtp.port,
        pool=f"mailer-{uuid.uuid4().hex[:8]}",
        sender="reclaim@cloud.example.org",
        fallback_contact="help@cloud.example.org",
        operators=("ops@cloud.example.org",),
        retry_delay=0.2,
        smtp_timeout=5,
    )


@pytest.fixture
def mail_clock() -> MailClock:
    return MailClock()


@pytest.fixture
def run_mailer(
    keystone: SimServer, table: DynamoTimerStore, bus_url: str, mailer_settings: MailerSettings,
    mail_clock: MailClock,
) -> Iterator[Any]:  # fmt: skip
    started: list[MailerService] = []

    def start() -> MailerService:
        addresses = DirectoryAddresses(
            KeystoneDirectory(keystone.connect()),
            fallback=mailer_settings.fallback_contact,
            operators=mailer_settings.operators,
        )
        core = Mailer(
            mailer_settings, addresses, SmtpSender(mailer_settings), MailLedger(table), Renderer(),
            clock=mail_clock,
        )  # fmt: skip
        service = MailerService(mailer_settings, core, BusSettings(transport_url=bus_url)).start()
        started.append(service)
        return service

    yield start
    for s in started:
        s.stop()
