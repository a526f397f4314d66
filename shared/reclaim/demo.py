"""The whole policy, played on embedded parts: simulated cloud, in-memory bus, store, clock.

Everything is the real code path: the simulated cloud serves openstacksdk over HTTP on
127.0.0.1 and emits Nova, Keystone, Glance and Neutron notifications on an in-memory
oslo.messaging bus; reclaim's bus listener turns them into timers in an in-process store;
the sweeper fires what is due through openstacksdk, with the simulated clock jumping from
one due time to the next. Each notice is mailed by the real mailer code (Keystone
addresses, templates, the mail ledger) to an SMTP server on 127.0.0.1, so the sweeper counts
it as given only once that server accepted it, as in production.

The demo tells the policy's six stories (:data:`STORIES`), interleaved on one timeline in
time order; within one sweep, an action comes before the notice that reports it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from reclaim.bus.settings import BusSettings
from reclaim.settings import Settings, SweepSettings, load_settings
from reclaim.store import DynamoTimerStore, open_store
from reclaim.sweeper import Sweeper
from reclaim.sweeper.sweep import Outcome
from reclaim.views import stamp

BUS = "kombu+memory:////"
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
#: How far the story runs: past the last deletion it sets in motion.
HORIZON = timedelta(days=400)
#: The namespace of the demo's ids (:func:`_id`).
_IDS = uuid.UUID("0e4f7c1a-9b2d-5e3f-8a6b-1c2d3e4f5a6b")
OPERATORS = "ops@cloud.example"
#: Where the demo's mails send their signed links (``web.base_url``), and the key that
#: signs them: fixed, so the output is the same in every run; a demo key, never a real one.
WEB_URL = "http://127.0.0.1:8080"
WEB_KEY = "reclaim-demo-only-link-key"
FALLBACK = "help@cloud.example"

#: The policy's stories (seed: resource-recovery-policies.txt), numbered as the timeline
#: tags its lines.
STORIES = {
    1: "a stopped or suspended server is shelved after 14 days",
    2: "a shelved server is deleted after 180 days",
    3: "a project is cleaned up 180 days after its allocation ends (Keystone must agree)",
    4: "an image's owner is removed: its dependents are warned, then the image goes",
    5: "an end-of-life image: the owners of servers booted from it are warned",
    6: "a database port open to the world: the project is warned",
}


@dataclass(frozen=True)
class Line:
    """One line of the timeline: when (simulated), which story, what kind, what."""

    at: datetime
    story: int
    kind: str  # event | notice | action | skip | hold
    text: str

    def as_json(self) -> dict[str, Any]:
        return {"at": stamp(self.at), "story": self.story, "kind": self.kind, "text": self.text}


@dataclass
class Story:
    """What the demo did: the timeline and the cloud as it was left."""

    lines: list[Line] = field(default_factory=list)
    servers: list[dict[str, str]] = field(default_factory=list)
    images: list[dict[str, str]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    #: mails the SMTP server accepted, and how many of them went to the operators
    mails: int = 0
    alerts: int = 0
    #: each story's first mail with a link: (``kind -> recipient (resource)``, its link)
    links: dict[int, tuple[str, str]] = field(default_factory=dict)


def story_of(rule: str, resource_type: str) -> int:
    """The story a timer's rule belongs to (the dependents of a project's images are warned
    because its allocation ended; of a user's, because the user was removed)."""
    if rule.startswith(("image-dependents", "owner-images")):
        return 3 if resource_type == "project" else 4
    return {
        "shelve": 1,
        "delete-shelved": 2,
        "project-cleanup": 3,
        "eol-image": 5,
        "eol-image-reminder": 5,
    }.get(rule, 6 if rule.startswith("exposed-service") else 0)


class _Narrated(Sweeper):
    """The sweeper as it is, telling the demo which timer each notice it publishes is for
    (each timer is handled whole on one of the sweep's threads)."""

    current = threading.local()

    def _one(self, timer: Any, now: datetime, dry: bool, state: Any) -> Outcome:
        _Narrated.current.key = (timer.resource_type, timer.resource_id, timer.rule)
        try:
            return super()._one(timer, now, dry, state)
        finally:
            _Narrated.current.key = None


@dataclass(frozen=True)
class _Sent:
    """A notice the sweeper published, the timer it came from, and who got its mail."""

    message: Any
    timer: tuple[str, str, str] | None
    to: tuple[str, ...]


class Demo:
    """Builds the cloud, wires reclaim to it, and plays the story. Use as a context manager."""

    def __init__(self, settings: Settings | None = None) -> None:
        from reclaim.bus.listener import Listener
        from reclaim.sweeper import OpenStackCloud
        from reclaim_sim import Cloud, SimClock, SimConfig, SimServer

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
        self.sweeper = _Narrated(
            self.store,
            OpenStackCloud(
                admin,
                cleanup_connect=self._cleanup_connection,
                cleanup_user_id=cleaner.id,
            ),
            self.notices,
            self.settings.policy,
            "demo-sweeper",
            # a held action is not looked at again within the story (every hour in
            # production): each look is a sweep of its own, and the cleanup stays held
            SweepSettings(retry_sleep=0.01, parallelism=4, recheck_held=HORIZON),
            allocation_end_property=self.settings.reconcile.allocation_end_property,
        )
        self.story = Story()
        self._names: dict[str, str] = {}
        self._people: dict[str, str] = {OPERATORS: "operators", FALLBACK: "help desk"}
        self._holds: set[tuple[str, str]] = set()
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
        from reclaim.settings import MailerSettings, WebSettings
        from reclaim.web.links import mail_links

        m = MailerSettings(
            smtp_host="127.0.0.1", smtp_port=port, operators=(OPERATORS,),
            fallback_contact=FALLBACK, smtp_timeout=10,
        )  # fmt: skip
        addresses = DirectoryAddresses(
            KeystoneDirectory(admin), fallback=m.fallback_contact, operators=m.operators,
            member_roles=m.member_roles,
        )  # fmt: skip
        web = WebSettings(base_url=WEB_URL, secret_key=WEB_KEY)
        self._links = mail_links(web, clock=self.clock.now)
        renderer = Renderer(None, Site(cloud_name="the demo cloud"), links=self._links)
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

    def say(self, story: int, kind: str, text: str) -> None:
        self.story.lines.append(Line(self.clock.now(), story, kind, text))

    def name(self, resource_id: str | None) -> str:
        """The resource's name as the demo made it (a short id for what it did not name)."""
        return self._names.get(resource_id or "", (resource_id or "-")[:8])

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until the listener has stored (or set aside) every notification the cloud
        published."""
        deadline = time.monotonic() + timeout
        while self._processed() < self._published:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the listener took {self._processed():.0f} of {self._published} notifications"
                )
            time.sleep(0.005)

    def _processed(self) -> float:
        """Notifications the listener is done with: stored, ignored or dead-lettered."""
        m = self.listener.metrics
        dead = sum(
            sample.value
            for metric in m.dead_lettered.collect()
            for sample in metric.samples
            if sample.name.endswith("_total")
        )
        return m.value("reclaim_bus_applied_total") + m.value("reclaim_bus_ignored_total") + dead

    def at(self, when: datetime, story: int, text: str, act: Callable[[], Any]) -> Any:
        """Sweep everything due before ``when``, then move the clock there and do ``act``."""
        self.run_until(when)
        self.say(story, "event", text)
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
        """One sweep, told timer by timer, story by story: warnings first, then each action
        before the notices it sent, a hold once per resource and reason before its alert;
        notices of no timer last."""
        report = self.sweeper.sweep(self.clock.now())
        sent = self.notices.take()
        outcomes = sorted(
            report.outcomes,
            key=lambda o: (
                story_of(o.rule, o.resource_type),
                o.result != "notified",  # a story's warnings, then what it did
                self.name(o.resource_id),
                o.rule,
            ),
        )
        held: dict[tuple[str, str], list[Outcome]] = {}
        for o in outcomes:
            if o.result == "held":
                held.setdefault((o.resource_id, _why(o)), []).append(o)
        for o in outcomes:
            story = story_of(o.rule, o.resource_type)
            mine = [s for s in sent if s.timer == (o.resource_type, o.resource_id, o.rule)]
            what = f"{o.resource_type} {self.name(o.resource_id)}"
            if o.result == "held":
                key = (o.resource_id, _why(o))
                group = held.pop(key, [])
                if group and key not in self._holds:  # once per resource and reason
                    self._holds.add(key)
                    acts = ", ".join(sorted({g.action for g in group}))
                    self.say(story, "hold", f"{acts} {what}: {key[1]}")
            elif o.result in ("done", "gone"):
                self.say(story, "action", f"{o.action} {what}: {o.result}")
            elif o.result not in ("notified", "leased"):
                self.say(story, "skip", f"{o.action} {what}: {o.result} {o.reason}".rstrip())
            for s in mine:
                self._notice(story, s)
        for s in sent:
            if s.timer is None:
                self._notice(0, s)
        self.settle()

    def _notice(self, story: int, sent: _Sent) -> None:
        m = sent.message
        to = ", ".join(sorted({self._people.get(a, a) for a in sent.to})) or "nobody (no mail)"
        self.say(story, "notice", f"{m.kind} -> {to} ({self.name(m.resource_id)})")
        if m.operator:
            self.story.alerts += 1
        if story and story not in self.story.links and sent.to and self._links is not None:
            from reclaim.mailer.addresses import Person

            first = sorted(sent.to)[0]
            link = self._links(m, Person(first))  # the link that recipient's mail carries
            if link:
                who = f"{m.kind} -> {self._people.get(first, first)} ({self.name(m.resource_id)})"
                self.story.links[story] = (who, link)

    # -- the story ------------------------------------------------------------------
    def play(self) -> Story:
        """The six stories on one cloud, over a year of simulated time."""
        from reclaim.bus.publisher import Publisher, allocation_event

        c = self.cloud
        day = timedelta(days=1)
        astro = c.identity.create_project(
            "astro", id=_id("project", "astro").hex, description="radio astronomy",
            properties={"allocation_end": "2027-12-31"},
        )  # fmt: skip
        genomics = c.identity.create_project(
            "genomics", id=_id("project", "genomics").hex, description="sequencing lab"
        )
        teaching = c.identity.create_project(
            "teaching", id=_id("project", "teaching").hex, description="course sandbox"
        )
        users: dict[str, Any] = {}
        for name, project in (
            ("ana", astro), ("olga", astro), ("gus", genomics), ("tess", teaching),
        ):  # fmt: skip
            address = f"{name}@uni.example"
            users[name] = c.identity.create_user(
                name, id=_id("user", name).hex, email=address, default_project_id=project.id
            )
            c.identity.grant(users[name].id, project.id, "member")
            self._people[address] = name
        ana, olga, gus, tess = (users[n] for n in ("ana", "olga", "gus", "tess"))
        ubuntu = c.image.create_image(
            id=str(_id("image", "ubuntu-24.04")), owner=None, name="ubuntu-24.04", visibility="public", status="active",
            properties={"os_distro": "ubuntu", "os_version": "24.04"},
        )  # fmt: skip
        focal = c.image.create_image(
            id=str(_id("image", "ubuntu-20.04")), owner=None, name="ubuntu-20.04", visibility="public", status="active",
            properties={"os_distro": "ubuntu", "os_version": "20.04"},
        )  # fmt: skip
        toolkit = c.image.create_image(
            id=str(_id("image", "genomics-toolkit")), owner=genomics.id, name="genomics-toolkit", visibility="community", status="active",
            properties={"user_id": gus.id},
        )  # fmt: skip
        stellar = c.image.create_image(
            id=str(_id("image", "stellar-tools")), owner=astro.id, name="stellar-tools", visibility="community", status="active",
            properties={"user_id": olga.id},
        )  # fmt: skip
        self._names |= {p.id: p.name for p in (astro, genomics, teaching)}
        self._names |= {u.id: u.name for u in users.values()}
        self._names |= {i.id: i.name or i.id for i in (ubuntu, focal, toolkit, stellar)}

        def boot(name: str, project: Any, user: Any, image: Any, **kw: Any) -> str:
            s = c.compute.create_server(
                project_id=project.id, user_id=user.id, name=name, image_id=image.id,
                id=str(_id("server", name)), **kw,
            )  # fmt: skip
            self._names[s.id] = name
            return s.id

        def act(server_id: str, action: str, user: Any, project: Any) -> Callable[[], Any]:
            return lambda: c.compute.action(c.ctx(user.id, project.id), server_id, action)

        analysis = boot("analysis", astro, ana, ubuntu)
        viz = boot("viz", astro, ana, ubuntu)
        notebook = boot("notebook", astro, ana, focal)
        pipeline = boot("pipeline", astro, ana, toolkit)
        course = boot("course", teaching, tess, ubuntu, metadata={"reclaim:exempt": "true"})
        lab = boot("lab", teaching, tess, stellar)
        gus_vm = boot("assembler", genomics, gus, toolkit)
        booted = {analysis, viz, notebook, pipeline, course, lab, gus_vm}
        self.settle()

        # 1, 2: servers stopped, suspended, restarted in time, shelved, deleted
        self.at(START + day, 1, "ana stops analysis", act(analysis, "os-stop", ana, astro))
        self.at(START + 2 * day, 1, "ana suspends viz", act(viz, "suspend", ana, astro))
        self.at(START + 3 * day, 1, "ana stops notebook", act(notebook, "os-stop", ana, astro))
        self.at(
            START + 3 * day, 1, "tess stops course (exempt by its metadata)",
            act(course, "os-stop", tess, teaching),
        )  # fmt: skip
        self.at(START + 4 * day, 2, "ana shelves pipeline", act(pipeline, "shelve", ana, astro))
        self.at(
            START + 10 * day, 1, "ana starts notebook again, in time",
            act(notebook, "os-start", ana, astro),
        )  # fmt: skip
        self.at(START + 12 * day, 1, "gus stops assembler", act(gus_vm, "os-stop", gus, genomics))

        # 3: an allocation ends; a forged end for a running one is held
        publisher = Publisher(BusSettings(transport_url=BUS, durable_queues=False))
        try:
            ended = START + 25 * day

            def announce() -> None:
                # the allocation system records the end in Keystone, then announces it
                c.identity.update_project(genomics.id, allocation_end=iso(ended))
                self._published += 2  # identity.project.updated, allocation.ended
                publisher.publish(
                    allocation_event(
                        "ended", genomics.id, end_date=iso(ended), now=_oslo_time(ended)
                    )
                )

            self.at(ended, 3, "genomics' allocation ends (Keystone, then the bus)", announce)
            forged = START + 30 * day

            def backdated() -> None:
                self._published += 1
                publisher.publish(
                    allocation_event(
                        "ended", astro.id, end_date=iso(forged - 200 * day), now=_oslo_time(forged)
                    )
                )

            self.at(forged, 3, "an allocation.ended for astro dated 200 days ago", backdated)
        finally:
            publisher.close()

        # 4: an image's owner leaves; 5: an image reaches its end of life; 6: a port opened
        self.at(
            START + 35 * day, 4, "olga, owner of stellar-tools, is removed from Keystone",
            lambda: c.identity.delete_user(olga.id),
        )  # fmt: skip
        self.at(
            START + 40 * day, 5, "operators mark ubuntu-20.04 end of life",
            lambda: c.image.update(None, focal.id, {"end_of_life": "true"}),
        )  # fmt: skip
        rule_ids: list[str] = []

        def expose() -> None:
            group = c.network.create_security_group(c.ctx(tess.id, teaching.id), "lab-db")
            rule = c.network.create_security_group_rule(
                c.ctx(tess.id, teaching.id), group["id"], protocol="tcp",
                port_range_min=27017, port_range_max=27017, remote_ip_prefix="0.0.0.0/0",
            )  # fmt: skip
            self._names[rule["id"]] = "tcp 27017 from 0.0.0.0/0"
            rule_ids.append(rule["id"])

        self.at(START + 42 * day, 6, "tess opens MongoDB (27017) to the world", expose)
        self.at(
            START + 51 * day, 6, "tess deletes the rule",
            lambda: c.network.delete_security_group_rule(c.ctx(tess.id, teaching.id), rule_ids[0]),
        )  # fmt: skip
        self.run_until(START + HORIZON)

        self.story.servers = [
            {
                "name": self.name(s.id),
                "id": s.id,
                "project": self.name(s.project_id),
                "status": s.status,
            }
            for s in c.compute.servers.values()
        ]
        self.story.deleted = sorted(self._names[i] for i in booted - set(c.compute.servers))
        self.story.images = [
            {"name": i.name or i.id, "owner": self.name(i.owner) if i.owner else "-",
             "visibility": i.visibility}
            for i in c.image.images.values()
            if i.id in self._names
        ]  # fmt: skip
        self.story.mails = self.smtp.outbox.accepted
        return self.story


def _id(kind: str, name: str) -> uuid.UUID:
    """The id of the demo's ``kind`` named ``name``: the same in every run, so that its
    output is too (docs/demo-output.txt)."""
    return uuid.uuid5(_IDS, f"{kind}:{name}")


def _why(outcome: Outcome) -> str:
    """A hold's reason without its prefix and its next look."""
    return outcome.reason.split(" (next look", 1)[0].removeprefix("held: ")


def iso(when: datetime) -> str:
    return stamp(when) or ""


def _oslo_time(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S.%f")


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
    (in production the bus sits in between) and kept for the timeline, with the timer it
    came from and the addresses whose mail the SMTP server accepted."""

    def __init__(self, mailer: Any) -> None:
        self.mailer = mailer
        self._sent: list[_Sent] = []
        self._lock = threading.Lock()

    def publish(self, message: Any) -> None:
        deliveries = self.mailer.handle(message.payload())
        to = tuple(d.address for d in deliveries if d.result == "sent")
        with self._lock:
            self._sent.append(_Sent(message, getattr(_Narrated.current, "key", None), to))

    def take(self) -> list[_Sent]:
        """The notices published since the last call, in the order they were."""
        with self._lock:
            sent, self._sent = self._sent, []
        return sent


class _Counter:
    """A notification sink that only counts (so the demo knows when the bus is drained)."""

    def __init__(self, tick: Callable[[], None]) -> None:
        self.tick = tick

    def send(self, notification: Any) -> None:
        self.tick()

    def close(self) -> None:
        pass


@contextlib.contextmanager
def running(settings: Settings | None = None) -> Iterator[Demo]:
    """A demo whose parts are stopped on exit."""
    demo = Demo(settings)
    try:
        yield demo
    finally:
        demo.close()
