"""The whole policy, played on embedded parts: simulated cloud, in-memory bus, store, clock.

Everything is the real code path: the simulated cloud serves openstacksdk over HTTP on
127.0.0.1 and emits Nova, Keystone and Glance notifications on an in-memory oslo.messaging
bus; reclaim's bus listener turns them into timers in an in-process store; the sweeper fires
what is due through openstacksdk, with the simulated clock jumping from one due time to the
next. Each notice is mailed by the real mailer code (Keystone addresses, templates, the
mail ledger) to an SMTP server on 127.0.0.1, so the sweeper counts it as given only once
that server accepted it, as in production.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from reclaim.bus.settings import BusSettings
from reclaim.settings import Settings, SweepSettings, load_settings
from reclaim.store import DynamoTimerStore, open_store

BUS = "kombu+memory:////"
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
#: How far the story runs: past the last deletion it sets in motion.
HORIZON = timedelta(days=400)


@dataclass(frozen=True)
class Line:
    """One line of the timeline."""

    at: datetime
    kind: str  # event | notice | action | skip | hold | note
    text: str

    def as_json(self) -> dict[str, str]:
        return {
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "kind": self.kind,
            "text": self.text,
        }


@dataclass
class Story:
    """What the demo did: the timeline and the cloud as it was left."""

    lines: list[Line] = field(default_factory=list)
    servers: list[dict[str, str]] = field(default_factory=list)
    images: list[dict[str, str]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    projects: list[dict[str, str]] = field(default_factory=list)


class Demo:
    """Builds the cloud, wires reclaim to it, and plays the story. Use as a context manager."""

    def __init__(self, settings: Settings | None = None) -> None:
        from reclaim.bus.listener import Listener
        from reclaim.sim import Cloud, SimClock, SimConfig, SimServer
        from reclaim.sweeper import OpenStackCloud, Sweeper

        # oslo.messaging warns that the in-memory transport has no heartbeat: expected here.
        logging.getLogger("oslo.messaging").setLevel(logging.ERROR)
        logging.getLogger("oslo_messaging").setLevel(logging.ERROR)
        self.settings = settings or load_settings()
        self.clock = SimClock(START)
        self.cloud = Cloud(
            clock=self.clock,
            config=SimConfig(notification_format="versioned"),
            transport_url=BUS,
        )
        self.server = SimServer(self.cloud).start()
        self.store: DynamoTimerStore = open_store(f"memory://demo-{uuid.uuid4().hex[:8]}")
        pool = f"reclaim-demo-{uuid.uuid4().hex[:6]}"
        self.listener = Listener(
            BusSettings(transport_url=BUS, pool=pool, metrics_port=0, durable_queues=False),
            self.store,
            self.settings.policy,
            ingest=self.settings.ingest,
            clock=self.clock.now,  # the simulated cloud's events arrive in its own time
        ).start()
        admin = self.server.connect()
        self.smtp = _Smtp()
        self.notices = _Mailed(self._mailer(admin, self.smtp.port))
        cleaner = self.cloud.identity.create_user("reclaim-cleaner", password="demo-cleaner")
        self.sweeper = Sweeper(
            self.store,
            OpenStackCloud(
                admin,
                cleanup_connect=self._cleanup_connection,
                cleanup_user_id=cleaner.id,
            ),
            self.notices,
            self.settings.policy,
            "demo-sweeper",
            # a held action is looked at again every 60 simulated days (1 h in production),
            # so the story does not sweep every hour for months
            SweepSettings(retry_sleep=0.01, parallelism=4, recheck_held=timedelta(days=60)),
            allocation_end_property=self.settings.reconcile.allocation_end_property,
        )
        self.story = Story()
        self._holds: set[tuple[str, str, str]] = set()
        self._published = 0
        self.cloud.notifier.add_sink(_Counter(self._count))

    # -- plumbing -------------------------------------------------------------------
    def _mailer(self, admin: Any, port: int) -> Any:
        """The mailer as ``reclaim mailer`` builds it, on the simulated Keystone and the
        demo's SMTP server, stamping its ledger with the simulated clock."""
        from reclaim.mailer import DirectoryAddresses, KeystoneDirectory, Mailer, MailLedger
        from reclaim.mailer.render import Renderer
        from reclaim.mailer.smtp import SmtpSender
        from reclaim.notices.context import Site
        from reclaim.settings import MailerSettings

        m = MailerSettings(
            smtp_host="127.0.0.1", smtp_port=port, operators=("ops@cloud.example",),
            fallback_contact="help@cloud.example", smtp_timeout=10,
        )  # fmt: skip
        addresses = DirectoryAddresses(
            KeystoneDirectory(admin), fallback=m.fallback_contact, operators=m.operators,
            member_roles=m.member_roles,
        )  # fmt: skip
        renderer = Renderer(None, Site(cloud_name="the demo cloud"))
        return Mailer(
            m, addresses, SmtpSender(m), MailLedger(self.store), renderer, clock=self.clock.now
        )

    def _cleanup_connection(self, project_id: str, pool: Any, request_id: str) -> Any:
        """A connection for reclaim's cleanup user (no admin role) scoped to ``project_id``."""
        import openstack.connection

        config = self.server.cloud_config("reclaim-cleaner", "admin", "demo-cleaner")
        auth = {k: v for k, v in config["auth"].items() if not k.startswith("project_")}
        auth["project_id"] = project_id
        return openstack.connection.Connection(
            auth_type="password", auth=auth, region_name=config["region_name"],
            interface="public", identity_api_version="3", pool_executor=pool,
            global_request_id=request_id,
        )  # fmt: skip

    def _count(self) -> None:
        self._published += 1

    def close(self) -> None:
        self.listener.stop()
        self.server.stop()
        self.cloud.close()
        self.smtp.stop()

    def __enter__(self) -> Demo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def say(self, kind: str, text: str) -> None:
        self.story.lines.append(Line(self.clock.now(), kind, text))

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until the listener has taken every notification the cloud published."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.listener.metrics.value("reclaim_bus_received_total") >= self._published:
                time.sleep(0.05)  # the batch that counted them is being stored
                return
            time.sleep(0.02)
        raise TimeoutError(
            f"the listener took {self.listener.metrics.value('reclaim_bus_received_total')} of {self._published} notifications"
        )

    def at(self, when: datetime, text: str, act: Callable[[], Any]) -> Any:
        """Sweep everything due before ``when``, then move the clock there and do ``act``."""
        self.run_until(when)
        self.say("event", text)
        result = act()
        self.settle()
        return result

    def run_until(self, until: datetime) -> None:
        """Jump from one due time to the next, sweeping each, until ``until``.

        A timer the sweep left for later (a retry backoff, a notice's lead time) holds a
        lease: the clock then jumps to the lease's end, as the next periodic sweep would.
        """
        while True:
            self.settle()
            when = self._next_work()
            if when is None or when > until:
                break
            if when > self.clock.now():
                self.clock.advance(when - self.clock.now())
            self._sweep()
        if until > self.clock.now():
            self.clock.advance(until - self.clock.now())

    def _next_work(self) -> datetime | None:
        """The earliest time a sweep has work: a timer's next notice or action on its moved
        schedule, or the end of the lease holding it."""
        from reclaim.sweeper.rules import next_work
        from reclaim.sweeper.sweep import NOTICE_HOLD

        now = self.clock.now()
        floor = self.sweeper.settings.min_notice_lead
        times: list[datetime] = []
        for timer in self.store.pending():
            due = next_work(timer, floor)
            if due is None:
                continue
            waits = timer.lease_owner == NOTICE_HOLD  # for its next step: ``due`` says when
            if not waits and timer.lease_until is not None and timer.lease_until > now:
                due = max(due, timer.lease_until)
            times.append(max(due, now))
        return min(times, default=None)

    def _sweep(self) -> None:
        before = len(self.notices.messages)
        report = self.sweeper.sweep(self.clock.now())
        for message in self.notices.messages[before:]:
            who = message.user_id or message.project_id
            to = "operators" if message.operator or not who else _name(self, who)
            self.say("notice", f"{message.kind} -> {to} ({_name(self, message.resource_id)})")
        for o in report.outcomes:
            if o.result == "held":
                why = o.reason.split(" (next look", 1)[0]
                if (o.resource_id, o.rule, why) not in self._holds:  # once per reason
                    self._holds.add((o.resource_id, o.rule, why))
                    self.say(
                        "hold", f"{o.action} {o.resource_type} {_name(self, o.resource_id)}: {why}"
                    )
            elif o.result in ("done", "gone"):
                self.say(
                    "action",
                    f"{o.action} {o.resource_type} {_name(self, o.resource_id)}: {o.result}",
                )
            elif o.result not in ("notified", "leased"):
                self.say(
                    "skip",
                    f"{o.action} {o.resource_type} {_name(self, o.resource_id)}: {o.result} {o.reason}".rstrip(),
                )
        self.settle()

    # -- the story ------------------------------------------------------------------
    def play(self) -> Story:
        from reclaim.bus.publisher import Publisher, allocation_event

        c = self.cloud
        astro = c.identity.create_project(
            "astro", description="radio astronomy", properties={"allocation_end": "2027-12-31"}
        )
        genomics = c.identity.create_project("genomics", description="sequencing lab")
        teaching = c.identity.create_project("teaching", description="course sandbox")
        ana = c.identity.create_user("ana", email="ana@uni.example", default_project_id=astro.id)
        gus = c.identity.create_user("gus", email="gus@uni.example", default_project_id=genomics.id)
        tess = c.identity.create_user(
            "tess", email="tess@uni.example", default_project_id=teaching.id
        )
        for user, project in ((ana, astro), (gus, genomics), (tess, teaching)):
            c.identity.grant(user.id, project.id, "member")
        ubuntu = c.image.create_image(
            owner=None, name="ubuntu-24.04", visibility="public", status="active"
        )
        toolkit = c.image.create_image(
            owner=genomics.id, name="genomics-toolkit", visibility="community", status="active",
            properties={"user_id": gus.id},
        )  # fmt: skip
        self._names: dict[str, str] = {p.id: p.name for p in (astro, genomics, teaching)}
        self._names |= {u.id: u.name for u in (ana, gus, tess)}
        self._names |= {ubuntu.id: "ubuntu-24.04", toolkit.id: "genomics-toolkit"}

        def boot(name: str, project: Any, user: Any, image: Any, **kw: Any) -> str:
            s = c.compute.create_server(
                project_id=project.id, user_id=user.id, name=name, image_id=image.id, **kw
            )
            self._names[s.id] = name
            return s.id

        def act(server_id: str, action: str, user: Any, project: Any) -> Callable[[], Any]:
            return lambda: c.compute.action(c.ctx(user.id, project.id), server_id, action)

        analysis = boot("analysis", astro, ana, ubuntu)
        viz = boot("viz", astro, ana, ubuntu)
        notebook = boot("notebook", astro, ana, ubuntu)
        pipeline = boot("pipeline", astro, ana, toolkit)
        course = boot("course", teaching, tess, ubuntu, metadata={"reclaim:exempt": "true"})
        gus_vm = boot("assembler", genomics, gus, toolkit)
        self.settle()
        day = timedelta(days=1)
        self.at(START + day, "ana stops analysis", act(analysis, "os-stop", ana, astro))
        self.at(START + 2 * day, "ana suspends viz", act(viz, "suspend", ana, astro))
        self.at(START + 3 * day, "ana stops notebook", act(notebook, "os-stop", ana, astro))
        self.at(
            START + 3 * day,
            "tess stops course (exempt by metadata)",
            act(course, "os-stop", tess, teaching),
        )
        self.at(START + 4 * day, "ana shelves pipeline", act(pipeline, "shelve", ana, astro))
        self.at(
            START + 10 * day,
            "ana starts notebook again, in time",
            act(notebook, "os-start", ana, astro),
        )
        self.at(START + 12 * day, "gus stops assembler", act(gus_vm, "os-stop", gus, genomics))
        publisher = Publisher(BusSettings(transport_url=BUS, durable_queues=False))
        try:
            ended = START + 25 * day
            body = allocation_event(
                "ended", genomics.id, end_date=ended.isoformat().replace("+00:00", "Z"),
                now=ended.strftime("%Y-%m-%d %H:%M:%S.%f"),
            )  # fmt: skip

            def announce() -> None:
                # the allocation system records the end in Keystone, then announces it
                c.identity.update_project(genomics.id, allocation_end=iso(ended))
                self._published += 2  # identity.project.updated, allocation.ended
                publisher.publish(body)

            self.at(ended, "genomics' allocation ends (allocation.ended on the bus)", announce)
            forged = START + 30 * day
            rogue = allocation_event(
                "ended", astro.id, end_date=iso(forged - 200 * day),
                now=forged.strftime("%Y-%m-%d %H:%M:%S.%f"),
            )  # fmt: skip

            def backdated() -> None:
                self._published += 1
                publisher.publish(rogue)

            self.at(
                forged,
                "a backdated allocation.ended for astro, whose Keystone record says it runs",
                backdated,
            )
        finally:
            publisher.close()
        self.run_until(START + HORIZON)
        self.story.servers = [
            {"name": self._names.get(s.id, s.id), "project": self._names.get(s.project_id, s.project_id),
             "status": s.status}
            for s in c.compute.servers.values()
        ]  # fmt: skip
        booted = {analysis, viz, notebook, pipeline, course, gus_vm}
        self.story.deleted = sorted(self._names[i] for i in booted - set(c.compute.servers))
        self.story.images = [
            {"name": i.name or i.id, "owner": self._names.get(i.owner or "", i.owner or "-"), "visibility": i.visibility}
            for i in c.image.images.values()
            if i.name in ("ubuntu-24.04", "genomics-toolkit")
        ]  # fmt: skip
        return self.story


def iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


class _Outbox:
    """An aiosmtpd handler that accepts every mail and counts them."""

    def __init__(self) -> None:
        self.accepted = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.accepted += 1
        return "250 Message accepted for delivery"


class _Smtp:
    """An SMTP server on 127.0.0.1 (aiosmtpd, in a thread of this process)."""

    def __init__(self) -> None:
        import socket

        from aiosmtpd.controller import Controller

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.outbox = _Outbox()
        self.controller = Controller(self.outbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


class _Mailed:
    """The sweeper's notice port in the demo: each notice is handed to the mailer at once
    (in production the bus sits in between), and kept for the timeline."""

    def __init__(self, mailer: Any) -> None:
        self.mailer = mailer
        self.messages: list[Any] = []

    def publish(self, message: Any) -> None:
        self.messages.append(message)
        self.mailer.handle(message.payload())


class _Counter:
    """A notification sink that only counts (so the demo knows when the bus is drained)."""

    def __init__(self, tick: Callable[[], None]) -> None:
        self.tick = tick

    def send(self, notification: Any) -> None:
        self.tick()

    def close(self) -> None:
        pass


def _name(demo: Demo, resource_id: str) -> str:
    names: dict[str, str] = getattr(demo, "_names", {})
    return names.get(resource_id, resource_id[:8])


@contextlib.contextmanager
def running(settings: Settings | None = None) -> Iterator[Demo]:
    """A demo whose parts are stopped on exit."""
    demo = Demo(settings)
    try:
        yield demo
    finally:
        demo.close()
