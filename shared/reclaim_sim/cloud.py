"""The simulated cloud's state: every service's data, one lock, one clock, one notifier."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from reclaim_sim.clock import SimClock
from reclaim_sim.compute import ComputeState
from reclaim_sim.core import Ctx, SimConfig
from reclaim_sim.faults import Faults, RequestLog
from reclaim_sim.identity import IdentityState
from reclaim_sim.image import ImageState
from reclaim_sim.network import NetworkState
from reclaim_sim.notify import Driver, Notification, Notifier, OsloSink, RecordingSink
from reclaim_sim.object_store import ObjectStoreState
from reclaim_sim.volume import VolumeState

if TYPE_CHECKING:
    from reclaim_sim.identity import Project


class Cloud:
    """A whole simulated OpenStack cloud, usable in-process or served over HTTP.

    Every change goes through a service state (``cloud.compute.action(...)``...) under
    :meth:`transaction`, which holds the lock and sends the notifications the change queued
    once the outermost transaction ends, in order, outside the lock.
    """

    def __init__(
        self,
        *,
        clock: SimClock | None = None,
        config: SimConfig | None = None,
        transport_url: str | None = None,
        driver: Driver = "messagingv2",
        admin_password: str = "admin",
    ) -> None:
        self.lock = threading.RLock()
        self.clock = clock or SimClock()
        self.config = config or SimConfig()
        self.notifier = Notifier()
        self.faults = Faults()
        self.requests = RequestLog()
        self._tls = threading.local()
        self.identity = IdentityState(self)
        self.compute = ComputeState(self)
        self.image = ImageState(self)
        self.volume = VolumeState(self)
        self.network = NetworkState(self)
        self.object_store = ObjectStoreState(self)
        self.admin_password = admin_password
        #: where the cloud is served (set by SimServer); used in links inside notifications
        self.base_url = "http://127.0.0.1"
        admin_project = self.identity.create_project("admin", description="Cloud operators")
        admin_user = self.identity.create_user(
            "admin", password=admin_password, email="admin@cloud.example"
        )
        self.identity.grant(admin_user.id, admin_project.id, "admin")
        self.admin_project_id = admin_project.id
        self.admin_user_id = admin_user.id
        self.network.create_network(
            self.admin_ctx(), "public", external=True, shared=False, cidr="203.0.113.0/24"
        )
        if transport_url:
            self.notifier.add_sink(OsloSink(transport_url, driver=driver))

    # -- transactions and notifications ----------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the lock; on leaving the outermost one, send the queued notifications."""
        tls = self._tls
        depth: int = getattr(tls, "depth", 0)
        if depth == 0:
            tls.outbox = []
        tls.depth = depth + 1
        try:
            with self.lock:
                yield
        finally:
            tls.depth = depth
            if depth == 0:
                outbox: list[Notification] = tls.outbox
                tls.outbox = []
                if outbox:
                    self.notifier.emit(outbox)

    @contextlib.contextmanager
    def quiet(self) -> Iterator[None]:
        """Changes made inside emit no notifications (seeding a scenario)."""
        previous = getattr(self._tls, "quiet", False)
        self._tls.quiet = True
        try:
            yield
        finally:
            self._tls.quiet = previous

    @property
    def notifying(self) -> bool:
        """Whether a change should build notifications at all (a sink exists, not quiet)."""
        return self.notifier.enabled and not getattr(self._tls, "quiet", False)

    def notify(self, notification: Notification) -> None:
        """Queue a notification for the end of the current transaction."""
        if not self.notifying:
            return
        outbox = getattr(self._tls, "outbox", None)
        if outbox is None or getattr(self._tls, "depth", 0) == 0:
            self.notifier.emit([notification])
        else:
            outbox.append(notification)

    def record_notifications(self, maxlen: int | None = 100_000) -> RecordingSink:
        """Start keeping emitted notifications in memory; returns the recorder."""
        return self.notifier.record(maxlen)

    def connect_transport(self, url: str, driver: Driver = "messagingv2") -> OsloSink:
        """Also publish through an oslo.messaging transport at ``url``."""
        sink = OsloSink(url, driver=driver)
        self.notifier.add_sink(sink)
        return sink

    @property
    def image_url(self) -> str:
        """Glance's address as Nova writes it into legacy ``image_ref_url``."""
        return f"{self.base_url}/image"

    # -- contexts --------------------------------------------------------------------------
    def admin_ctx(self) -> Ctx:
        """The cloud administrator, scoped to the admin project."""
        return Ctx(
            user_id=self.admin_user_id,
            project_id=self.admin_project_id,
            roles=("admin", "member", "reader"),
            user_name="admin",
            project_name="admin",
        )

    def ctx(self, user: str, project: str) -> Ctx:
        """An in-process context for ``user`` on ``project`` (ids or names) with its roles."""
        with self.lock:
            u = self.identity.user(user)
            p = self.identity.project(project)
            roles = self.identity.roles_on(u.id, p.id)
        return Ctx(
            user_id=u.id,
            project_id=p.id,
            roles=tuple(sorted(roles)),
            user_name=u.name,
            project_name=p.name,
        )

    def on_project_created(self, project: Project) -> None:
        """Neutron gives every project a ``default`` security group."""
        self.network.ensure_default_security_group(project.id)

    def close(self) -> None:
        self.notifier.close()
