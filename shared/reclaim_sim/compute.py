"""Simulated Nova v2.1: servers, their actions and state machine, metadata, notifications."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from reclaim_sim.clock import iso_micro, iso_z, parse_time
from reclaim_sim.core import (
    Ctx,
    SimError,
    bad_request,
    conflict,
    forbidden,
    new_id,
    not_found,
)
from reclaim_sim.notify import Notification
from reclaim_sim.wsgi import (
    ServiceAPI,
    base_url,
    empty,
    json_response,
    not_implemented,
    query_flag,
    read_json,
)

if TYPE_CHECKING:
    from reclaim_sim.cloud import Cloud

MIN_MICROVERSION = (2, 1)
MAX_MICROVERSION = (2, 100)

#: vm_state -> API status, as Nova's ``common.status_from_state`` maps them (no task state).
STATUS = {
    "active": "ACTIVE",
    "building": "BUILD",
    "stopped": "SHUTOFF",
    "suspended": "SUSPENDED",
    "paused": "PAUSED",
    "shelved": "SHELVED",
    "shelved_offloaded": "SHELVED_OFFLOADED",
    "rescued": "RESCUE",
    "resized": "VERIFY_RESIZE",
    "soft-delete": "SOFT_DELETED",
    "deleted": "DELETED",
    "error": "ERROR",
}
#: vm_state -> power state number (0 NOSTATE, 1 RUNNING, 3 PAUSED, 4 SHUTDOWN, 7 SUSPENDED)
POWER = {
    "active": 1,
    "building": 0,
    "stopped": 4,
    "suspended": 7,
    "paused": 3,
    "shelved": 4,
    "shelved_offloaded": 4,  # the power state read before the offload, as Nova keeps it
    "rescued": 1,
    "resized": 1,
    "soft-delete": 4,
    "deleted": 0,
    "error": 0,
}
POWER_NAME = {0: "pending", 1: "running", 3: "paused", 4: "shutdown", 6: "crashed", 7: "suspended"}
#: task_state -> the API status it shows over an active server's (Nova's status map).
TASK_STATUS = {"rebooting": "REBOOT", "rebooting_hard": "HARD_REBOOT"}


@dataclass(frozen=True)
class Transition:
    """A server action: the states it may start from, where it ends, how Nova names it."""

    api: str  # the key in the action body
    allowed: frozenset[str]
    end: str
    event: str  # notification action name (instance.<event>.end)
    task: str  # task_state while running


TRANSITIONS: dict[str, Transition] = {
    t.api: t
    for t in (
        Transition(
            "os-stop",
            frozenset({"active", "error", "rescued"}),
            "stopped",
            "power_off",
            "powering-off",
        ),
        Transition("os-start", frozenset({"stopped"}), "active", "power_on", "powering-on"),
        Transition("suspend", frozenset({"active"}), "suspended", "suspend", "suspending"),
        Transition("resume", frozenset({"suspended"}), "active", "resume", "resuming"),
        Transition("pause", frozenset({"active"}), "paused", "pause", "pausing"),
        Transition("unpause", frozenset({"paused"}), "active", "unpause", "unpausing"),
        Transition(
            "shelve",
            frozenset({"active", "stopped", "paused", "suspended"}),
            "shelved",
            "shelve",
            "shelving",
        ),
        Transition(
            "shelveOffload",
            frozenset({"shelved"}),
            "shelved_offloaded",
            "shelve_offload",
            "shelving_offloading",
        ),
        Transition(
            "unshelve",
            frozenset({"shelved", "shelved_offloaded"}),
            "active",
            "unshelve",
            "unshelving",
        ),
        Transition(
            "reboot",
            frozenset({"active", "stopped", "paused", "suspended", "error"}),
            "active",
            "reboot",
            "rebooting",
        ),
        Transition(
            "rescue", frozenset({"active", "stopped", "error"}), "rescued", "rescue", "rescuing"
        ),
        Transition("unrescue", frozenset({"rescued"}), "active", "unrescue", "unrescuing"),
    )
}
#: The vm_states ``createImage`` snapshots from.
SNAPSHOT_FROM = frozenset({"active", "stopped", "paused", "suspended"})


@dataclass(frozen=True)
class Flavor:
    id: str
    name: str
    vcpus: int
    ram: int
    disk: int
    ephemeral: int = 0
    swap: int = 0

    def to_api(self, base: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "vcpus": self.vcpus,
            "ram": self.ram,
            "disk": self.disk,
            "OS-FLV-EXT-DATA:ephemeral": self.ephemeral,
            "swap": self.swap or "",
            "rxtx_factor": 1.0,
            "os-flavor-access:is_public": True,
            "OS-FLV-DISABLED:disabled": False,
            "description": None,
            "extra_specs": {},
            "links": [{"rel": "self", "href": f"{base}/compute/v2.1/flavors/{self.id}"}],
        }


FLAVORS: dict[str, Flavor] = {
    f.id: f
    for f in (
        Flavor("1", "m1.tiny", 1, 512, 1),
        Flavor("2", "m1.small", 1, 2048, 20),
        Flavor("3", "m1.medium", 2, 4096, 40),
        Flavor("4", "m1.large", 4, 8192, 80),
    )
}


@dataclass
class Server:
    id: str
    name: str
    project_id: str
    user_id: str
    image_id: str  # "" when booted from a volume
    flavor: Flavor
    vm_state: str
    created_at: datetime
    updated_at: datetime
    host: str | None
    task_state: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    locked: bool = False
    locked_by: str | None = None  # "admin" or "owner"
    locked_reason: str | None = None
    launched_at: datetime | None = None
    key_name: str | None = None
    availability_zone: str = "nova"
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    port_ids: list[str] = field(default_factory=list)
    volume_ids: list[str] = field(default_factory=list)
    shelved_image_id: str | None = None
    shelved_at: datetime | None = None
    reservation_id: str = field(default_factory=lambda: "r-" + new_id()[:8])
    launch_index: int = 0
    deleted_at: datetime | None = None

    @property
    def status(self) -> str:
        if self.vm_state == "active" and self.task_state in TASK_STATUS:
            return TASK_STATUS[self.task_state]
        return STATUS.get(self.vm_state, "UNKNOWN")

    @property
    def power_state(self) -> int:
        return POWER.get(self.vm_state, 0)


def _microversion(request: Request) -> tuple[int, int]:
    header = request.headers.get("OpenStack-API-Version", "")
    value = None
    for part in header.split(","):
        words = part.strip().split()
        if len(words) == 2 and words[0].lower() == "compute":
            value = words[1]
    if value is None:
        value = request.headers.get("X-OpenStack-Nova-API-Version")
    if not value:
        return MIN_MICROVERSION
    if value == "latest":
        return MAX_MICROVERSION
    try:
        major, minor = (int(x) for x in value.split("."))
    except ValueError as exc:
        raise bad_request(f"Invalid microversion {value}") from exc
    if not MIN_MICROVERSION <= (major, minor) <= MAX_MICROVERSION:
        raise SimError(406, f"Version {value} is not supported by the API.", "notAcceptable")
    return (major, minor)


@dataclass
class Keypair:
    name: str
    user_id: str
    public_key: str
    fingerprint: str
    created_at: datetime
    type: str = "ssh"
    id: int = 0

    def to_api(self, mv: tuple[int, int], *, detail: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "public_key": self.public_key,
            "fingerprint": self.fingerprint,
        }
        if mv >= (2, 2):
            body["type"] = self.type
        if detail:
            body.update(
                user_id=self.user_id,
                id=self.id,
                created_at=iso_micro(self.created_at),
                updated_at=None,
                deleted=False,
                deleted_at=None,
            )
        return body


def fingerprint(public_key: str) -> str:
    """An OpenSSH public key's MD5 fingerprint as Nova shows it; 400 when it is no key."""
    parts = public_key.strip().split()
    try:
        blob = base64.b64decode(parts[1], validate=True) if len(parts) >= 2 else b""
    except (binascii.Error, ValueError):
        blob = b""
    if not blob:
        raise bad_request("Keypair data is invalid: failed to generate fingerprint")
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def generate_keypair() -> tuple[str, str]:
    """A new (private key PEM, public key) pair, as Nova made before microversion 2.92."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private, public.decode() + " Generated-by-Nova"


class ComputeState:
    """Nova's servers and the rules of their state machine.

    Changes made in-process finish at once. Those made through the API (boot, actions,
    delete) run as Nova's do when ``SimConfig.task_seconds`` is above 0: the API answers
    with the task started (``task_state`` set, its ``.start`` notifications sent) and each
    step finishes that many seconds later (wall clock), in a background thread or at the
    next request that comes after it, whichever is first.
    """

    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.servers: dict[str, Server] = {}
        #: deleted servers, as Nova keeps their rows (``deleted=true``, ``changes-since``)
        self.deleted: dict[str, Server] = {}
        self.flavors = dict(FLAVORS)
        self.keypairs: dict[tuple[str, str], Keypair] = {}
        self._shelved: set[str] = set()
        #: server id -> (monotonic time due, the step that finishes its running task)
        self._pending: dict[str, tuple[float, Callable[[Server], None]]] = {}
        self._worker: threading.Thread | None = None
        self._wake = threading.Condition(cloud.lock)

    # -- lookups ---------------------------------------------------------------------------
    def get(self, ctx: Ctx | None, server_id: str) -> Server:
        """The server if it exists and ``ctx`` may see it (admins see all), else 404."""
        server = self.servers.get(server_id)
        if server is None or (
            ctx is not None and not ctx.is_admin and server.project_id != ctx.project_id
        ):
            raise not_found("Instance", server_id)
        return server

    def flavor(self, ref: str) -> Flavor:
        found = self.flavors.get(ref) or next(
            (f for f in self.flavors.values() if f.name == ref), None
        )
        if found is None:
            raise bad_request(f"Flavor {ref} could not be found.")
        return found

    # -- changes ---------------------------------------------------------------------------
    def create_server(
        self,
        *,
        project_id: str,
        user_id: str,
        name: str,
        image_id: str | None = None,
        flavor: str = "m1.small",
        state: str = "active",
        metadata: dict[str, str] | None = None,
        locked: bool = False,
        networks: list[str] | None = None,
        volume_ids: list[str] | None = None,
        key_name: str | None = None,
        created_at: datetime | None = None,
        updated_at: datetime | None = None,
        id: str | None = None,
        ctx: Ctx | None = None,
        asynchronous: bool = False,
    ) -> Server:
        """Boot a server (it is ACTIVE at once) or, with ``state``, seed one in that state.

        ``asynchronous`` (the API's boot): the server stays BUILD, task ``scheduling``, for
        ``task_seconds`` when that is above 0."""
        cloud = self.cloud
        if state not in STATUS or state == "deleted":
            raise bad_request(f"Unknown vm_state {state}")
        with cloud.transaction():
            if image_id:
                cloud.image.get(None, image_id)  # the API has answered 400 already
            if not image_id and not volume_ids:
                raise bad_request("Block Device Mapping is Invalid: no image and no volume.")
            now = cloud.clock.now()
            created = created_at or now
            server = Server(
                id=id or new_id(),
                name=name,
                project_id=project_id,
                user_id=user_id,
                image_id=image_id or "",
                flavor=self.flavor(flavor),
                vm_state="building",
                task_state="scheduling",
                created_at=created,
                updated_at=updated_at or created,
                host=cloud.config.compute_host,
                metadata=dict(metadata or {}),
                key_name=key_name,
            )
            if ctx is None:
                ctx = Ctx(user_id=user_id, project_id=project_id, roles=("member",))
            self.servers[server.id] = server
            self._emit(server, "create", "start", ctx)
            for net_id in networks or []:
                port = cloud.network.create_port(
                    ctx,
                    network_id=net_id,
                    project_id=project_id,
                    device_owner="compute:nova",
                    device_id=server.id,
                )
                server.port_ids.append(port["id"])
            for vol_id in volume_ids or []:
                cloud.volume.attach(vol_id, server.id)
                server.volume_ids.append(vol_id)
            boot_ctx = ctx

            def built(server: Server) -> None:
                old = server.vm_state
                server.vm_state, server.task_state = "active", None
                server.launched_at = created if not asynchronous else cloud.clock.now()
                if asynchronous:
                    server.updated_at = cloud.clock.now()
                self._state_update(server, old, "scheduling", boot_ctx)
                self._emit(server, "create", "end", boot_ctx)

            if asynchronous and self._later(server, built):
                return server
            built(server)
            if state != "active":
                # a seeded server: put it straight into the wanted state
                server.vm_state = state
                if state in ("shelved", "shelved_offloaded"):
                    server.shelved_at = updated_at or created
                    self._shelve_snapshot(server)
                    if state == "shelved":
                        self._shelved.add(server.id)
                    else:
                        server.host = None
            if locked:
                server.locked, server.locked_by = True, "admin"
            server.updated_at = updated_at or created
            return server

    def action(
        self, ctx: Ctx, server_id: str, name: str, arg: Any = None, *, asynchronous: bool = False
    ) -> Server:
        """Run a server action as Nova does; 409 from a wrong state, a task in progress or
        when locked. ``asynchronous`` (the API's): see the class."""
        cloud = self.cloud
        with cloud.transaction():
            server = self.get(ctx, server_id)
            if name == "lock":
                return self._lock(ctx, server, arg)
            if name == "unlock":
                return self._unlock(ctx, server)
            transition = TRANSITIONS.get(name)
            if transition is None:
                raise bad_request(f"There is no such action: {name}")
            self._check_lock(ctx, server)
            self._check_state(server, transition.api, transition.allowed)
            offload = transition.end == "shelved" and cloud.config.shelved_offload_time == 0

            def then_offload(server: Server) -> None:
                self._begin(ctx, server, TRANSITIONS["shelveOffload"], asynchronous)

            self._begin(ctx, server, transition, asynchronous, then_offload if offload else None)
            return server

    def snapshot(
        self,
        ctx: Ctx,
        server_id: str,
        name: str,
        metadata: dict[str, str] | None = None,
        *,
        asynchronous: bool = False,
    ) -> str:
        """``createImage``: a snapshot image of the server in Glance (``queued`` while the
        task runs, then ``active``); its id."""
        cloud = self.cloud
        with cloud.transaction():
            server = self.get(ctx, server_id)
            self._check_lock(ctx, server)
            self._check_state(server, "createImage", SNAPSHOT_FROM)
            properties: dict[str, Any] = {
                **(metadata or {}),
                "image_type": "snapshot",
                "instance_uuid": server.id,
                "user_id": ctx.user_id,
                "owner_user_name": ctx.user_name,
                "owner_project_name": ctx.project_name,
            }
            if server.image_id:
                properties["base_image_ref"] = server.image_id
            image = cloud.image.create_image(
                owner=server.project_id,
                name=name,
                visibility="private",
                properties=properties,
                status="queued",
                ctx=ctx,
            )
            old_state = server.vm_state
            server.task_state = "image_snapshot"
            server.updated_at = cloud.clock.now()
            self._state_update(server, old_state, None, ctx, task_only=True)
            self._emit(server, "snapshot", "start", ctx)

            def taken(server: Server) -> None:
                live = cloud.image.images.get(image.id)
                if live is not None:
                    live.status, live.size = "active", 0
                    live.updated_at = cloud.clock.now()
                server.task_state = None
                server.updated_at = cloud.clock.now()
                self._state_update(server, old_state, "image_snapshot", ctx, task_only=True)
                self._emit(server, "snapshot", "end", ctx)

            if not (asynchronous and self._later(server, taken)):
                taken(server)
            return image.id

    def delete(self, ctx: Ctx, server_id: str, *, asynchronous: bool = False) -> None:
        """Delete (no soft delete): task ``deleting``, then ports go, volumes detach, the
        shelve snapshot goes, and the server is kept as deleted. A delete of a server being
        deleted is accepted and changes nothing. ``asynchronous``: see the class."""
        cloud = self.cloud
        with cloud.transaction():
            server = self.get(ctx, server_id)
            self._check_lock(ctx, server)
            if server.task_state == "deleting":
                return
            old_state = server.vm_state
            old_task = server.task_state
            server.task_state = "deleting"
            server.updated_at = cloud.clock.now()
            self._state_update(server, old_state, old_task, ctx, task_only=True)
            self._emit(server, "delete", "start", ctx)

            def gone(server: Server) -> None:
                for port_id in server.port_ids:
                    cloud.network.delete_port_quietly(port_id)
                for vol_id in server.volume_ids:
                    cloud.volume.detach(vol_id, server.id)
                if server.shelved_image_id:
                    cloud.image.delete_quietly(server.shelved_image_id)
                del self.servers[server.id]
                self._shelved.discard(server.id)
                server.vm_state, server.task_state = "deleted", None
                server.updated_at = server.deleted_at = cloud.clock.now()
                self.deleted[server.id] = server
                self._state_update(server, old_state, "deleting", ctx)
                self._emit(server, "delete", "end", ctx)

            if not (asynchronous and self._later(server, gone)):
                gone(server)

    def set_metadata(
        self, ctx: Ctx, server_id: str, items: dict[str, str], *, replace: bool = False
    ) -> Server:
        with self.cloud.transaction():
            server = self.get(ctx, server_id)
            self._check_lock(ctx, server)
            if replace:
                server.metadata = {}
            server.metadata.update({str(k): str(v) for k, v in items.items()})
            server.updated_at = self.cloud.clock.now()
            return server

    def delete_metadata(self, ctx: Ctx, server_id: str, key: str) -> None:
        with self.cloud.transaction():
            server = self.get(ctx, server_id)
            self._check_lock(ctx, server)
            if key not in server.metadata:
                raise not_found("Metadata item", key)
            del server.metadata[key]
            server.updated_at = self.cloud.clock.now()

    def attach_volume(self, ctx: Ctx, server_id: str, volume_id: str) -> None:
        with self.cloud.transaction():
            server = self.get(ctx, server_id)
            self._check_lock(ctx, server)
            self.cloud.volume.attach(volume_id, server.id)
            server.volume_ids.append(volume_id)
            server.updated_at = self.cloud.clock.now()

    def detach_volume(self, ctx: Ctx, server_id: str, volume_id: str) -> None:
        with self.cloud.transaction():
            server = self.get(ctx, server_id)
            self._check_lock(ctx, server)
            if volume_id not in server.volume_ids:
                raise not_found("Volume attachment", volume_id)
            self.cloud.volume.detach(volume_id, server.id)
            server.volume_ids.remove(volume_id)
            server.updated_at = self.cloud.clock.now()

    def tick(self) -> None:
        """Finish the steps that are due; offload shelved servers whose
        ``shelved_offload_time`` has passed (sim clock)."""
        self.finish_due()
        delay = self.cloud.config.shelved_offload_time
        if delay <= 0 or not self._shelved:
            return
        with self.cloud.transaction():
            now = self.cloud.clock.now()
            for sid in list(self._shelved):
                server = self.servers.get(sid)
                if server is None or server.vm_state != "shelved":
                    self._shelved.discard(sid)
                    continue
                if server.shelved_at and server.shelved_at + timedelta(seconds=delay) <= now:
                    self._run(self.cloud.admin_ctx(), server, TRANSITIONS["shelveOffload"])

    # -- asynchronous steps ----------------------------------------------------------------
    def _later(self, server: Server, step: Callable[[Server], None]) -> bool:
        """Finish the server's running task with ``step`` in ``task_seconds``; False (do it
        now) when that is 0."""
        seconds = self.cloud.config.task_seconds
        if seconds <= 0:
            return False
        with self.cloud.lock:
            self._pending[server.id] = (time.monotonic() + seconds, step)
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._work, name="reclaim-sim-nova-tasks", daemon=True
                )
                self._worker.start()
            self._wake.notify()
        return True

    def finish_due(self) -> int:
        """Run every step whose time has come, in the order they fall due; how many ran."""
        ran = 0
        with self.cloud.transaction():
            while self._pending:
                sid, (due, step) = min(self._pending.items(), key=lambda kv: kv[1][0])
                if due > time.monotonic():
                    break
                del self._pending[sid]
                server = self.servers.get(sid)
                if server is not None:
                    step(server)  # may queue the server's next step
                    ran += 1
        return ran

    def busy(self) -> bool:
        """Whether a server task is still running (``task_seconds`` above 0)."""
        with self.cloud.lock:
            return bool(self._pending)

    def _work(self) -> None:
        """The background thread: finish steps as they fall due; end when none is left."""
        while True:
            self.finish_due()
            with self.cloud.lock:
                if not self._pending:
                    self._worker = None
                    return
                wait = min(due for due, _ in self._pending.values()) - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)

    # -- the state machine -----------------------------------------------------------------
    def _check_state(self, server: Server, action: str, allowed: frozenset[str]) -> None:
        if server.task_state is not None:
            raise conflict(
                f"Cannot '{action}' instance {server.id} while it is in task_state "
                f"{server.task_state}"
            )
        if server.vm_state not in allowed:
            raise conflict(
                f"Cannot '{action}' instance {server.id} while it is in vm_state {server.vm_state}"
            )

    def _check_lock(self, ctx: Ctx, server: Server) -> None:
        if server.locked and not ctx.is_admin:
            raise conflict(f"Instance {server.id} is locked", "conflictingRequest")

    def _lock(self, ctx: Ctx, server: Server, arg: Any) -> Server:
        server.locked = True
        server.locked_by = (
            "admin" if ctx.is_admin and ctx.project_id != server.project_id else "owner"
        )
        if isinstance(arg, dict):
            server.locked_reason = arg.get("locked_reason")
        server.updated_at = self.cloud.clock.now()
        self._emit(server, "lock", None, ctx)
        return server

    def _unlock(self, ctx: Ctx, server: Server) -> Server:
        if server.locked_by == "admin" and not ctx.is_admin:
            raise forbidden(
                "Policy doesn't allow os_compute_api:os-lock-server:unlock:"
                "unlock_override to be performed."
            )
        server.locked, server.locked_by, server.locked_reason = False, None, None
        server.updated_at = self.cloud.clock.now()
        self._emit(server, "unlock", None, ctx)
        return server

    def _run(self, ctx: Ctx, server: Server, t: Transition) -> None:
        """Run ``t`` to its end now."""
        self._begin(ctx, server, t, False)

    def _begin(
        self,
        ctx: Ctx,
        server: Server,
        t: Transition,
        asynchronous: bool,
        then: Callable[[Server], None] | None = None,
    ) -> None:
        """Start ``t`` (task state, ``.start``); finish it now or, ``asynchronous``, later;
        then run ``then`` (the offload after a shelve)."""
        cloud = self.cloud
        old_state = server.vm_state
        old_task = server.task_state
        server.task_state = t.task
        server.updated_at = cloud.clock.now()
        self._state_update(server, old_state, old_task, ctx, task_only=True)
        self._emit(server, t.event, "start", ctx)

        def finish(server: Server) -> None:
            self._finish(ctx, server, t, old_state)
            if then is not None:
                then(server)

        if not (asynchronous and self._later(server, finish)):
            finish(server)

    def _finish(self, ctx: Ctx, server: Server, t: Transition, old_state: str) -> None:
        cloud = self.cloud
        if t.end == "shelved":
            server.shelved_at = cloud.clock.now()
            self._shelve_snapshot(server)
            self._shelved.add(server.id)
        elif t.end == "shelved_offloaded":
            server.host = None
            self._shelved.discard(server.id)
        elif t.api == "unshelve":
            server.host = cloud.config.compute_host
            server.shelved_at = None
            self._shelved.discard(server.id)
            if server.shelved_image_id:
                cloud.image.delete_quietly(server.shelved_image_id)
                server.shelved_image_id = None
                server.metadata.pop("shelved_image_id", None)
        server.vm_state, server.task_state = t.end, None
        server.updated_at = cloud.clock.now()
        self._state_update(server, old_state, t.task, ctx)
        self._emit(server, t.event, "end", ctx)

    def _shelve_snapshot(self, server: Server) -> None:
        if not server.image_id or server.shelved_image_id:
            return
        image = self.cloud.image.create_image(
            owner=server.project_id,
            name=f"{server.name}-shelved",
            visibility="private",
            properties={
                "image_type": "snapshot",
                "instance_uuid": server.id,
                "user_id": server.user_id,
                "base_image_ref": server.image_id,
            },
            status="active",
        )
        server.shelved_image_id = image.id

    # -- notifications ---------------------------------------------------------------------
    def _state_update(
        self,
        server: Server,
        old_state: str,
        old_task: str | None,
        ctx: Ctx,
        *,
        task_only: bool = False,
    ) -> None:
        """``instance.update`` as ``notify_on_state_change`` asks for."""
        mode = self.cloud.config.notify_on_state_change
        if mode is None or not self.cloud.notifying:
            return
        if task_only and mode != "vm_and_task_state":
            return
        if not task_only and mode == "vm_state" and old_state == server.vm_state:
            return
        update = {
            "old_state": old_state,
            "state": server.vm_state,
            "old_task_state": old_task,
            "new_task_state": server.task_state,
        }
        self._emit(server, "update", None, ctx, state_update=update)

    def _emit(
        self,
        server: Server,
        action: str,
        phase: str | None,
        ctx: Ctx,
        *,
        state_update: dict[str, Any] | None = None,
    ) -> None:
        cloud = self.cloud
        if not cloud.notifying:
            return
        fmt = cloud.config.notification_format
        now = cloud.clock.now()
        context = ctx.oslo_context()
        suffix = f".{phase}" if phase else ""
        if fmt in ("versioned", "both"):
            cloud.notify(
                Notification(
                    exchange="nova",
                    topic="versioned_notifications",
                    publisher_id=f"nova-compute:{cloud.config.compute_host}",
                    event_type=f"instance.{action}{suffix}",
                    payload=self._versioned_payload(server, action, ctx, state_update),
                    timestamp=now,
                    context=context,
                )
            )
        if fmt in ("unversioned", "both") and action not in ("lock", "unlock"):
            cloud.notify(
                Notification(
                    exchange="nova",
                    topic="notifications",
                    publisher_id=f"compute.{cloud.config.compute_host}",
                    event_type=f"compute.instance.{action}{suffix}",
                    payload=self._legacy_payload(server, state_update),
                    timestamp=now,
                    context=context,
                )
            )

    def _versioned_payload(
        self, server: Server, action: str, ctx: Ctx, state_update: dict[str, Any] | None
    ) -> dict[str, Any]:
        cloud = self.cloud
        f = server.flavor
        gone = server.vm_state == "deleted"
        data: dict[str, Any] = {
            "action_initiator_project": ctx.project_id,
            "action_initiator_user": ctx.user_id,
            "architecture": "x86_64",
            "auto_disk_config": "MANUAL",
            "availability_zone": server.availability_zone,
            "block_devices": [
                _nova_object(
                    "BlockDevicePayload",
                    "1.0",
                    {
                        "boot_index": None if server.image_id else 0,
                        "delete_on_termination": False,
                        "device_name": f"/dev/vd{chr(ord('b') + i)}",
                        "tag": None,
                        "volume_id": vid,
                    },
                )
                for i, vid in enumerate(server.volume_ids)
            ],
            "created_at": iso_z(server.created_at),
            "deleted_at": iso_z(server.updated_at) if gone else None,
            "display_description": server.description or server.name,
            "display_name": server.name,
            "fault": None,
            "flavor": _nova_object(
                "FlavorPayload",
                "1.4",
                {
                    "description": None,
                    "disabled": False,
                    "ephemeral_gb": f.ephemeral,
                    "extra_specs": {},
                    "flavorid": f.id,
                    "is_public": True,
                    "memory_mb": f.ram,
                    "name": f.name,
                    "projects": None,
                    "root_gb": f.disk,
                    "rxtx_factor": 1.0,
                    "swap": f.swap,
                    "vcpu_weight": 0,
                    "vcpus": f.vcpus,
                },
            ),
            "host": server.host,
            "host_name": server.name,
            "image_uuid": server.image_id,
            "ip_addresses": self._ip_payloads(server),
            "kernel_id": "",
            "key_name": server.key_name,
            "launched_at": iso_z(server.launched_at),
            "locked": server.locked,
            "locked_reason": server.locked_reason,
            "metadata": dict(server.metadata),
            "node": None if server.host is None else f"{server.host}-node",
            "os_type": None,
            "power_state": POWER_NAME[server.power_state],
            "progress": 0,
            "ramdisk_id": "",
            "request_id": ctx.request_id,
            "reservation_id": server.reservation_id,
            "shares": [],
            "state": server.vm_state,
            "task_state": server.task_state,
            "tenant_id": server.project_id,
            "terminated_at": iso_z(server.updated_at) if gone else None,
            "updated_at": iso_z(server.updated_at),
            "user_id": server.user_id,
            "uuid": server.id,
        }
        if action == "update":
            del data["fault"]
            now = cloud.clock.now()
            data["audit_period"] = _nova_object(
                "AuditPeriodPayload",
                "1.0",
                {
                    "audit_period_beginning": iso_z(
                        now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
                    ),
                    "audit_period_ending": iso_z(now),
                },
            )
            data["old_display_name"] = None
            data["tags"] = list(server.tags)
            data["state_update"] = _nova_object(
                "InstanceStateUpdatePayload", "1.0", dict(state_update or {})
            )
            return _nova_object("InstanceUpdatePayload", "2.1", data)
        if action == "create":
            data["instance_name"] = f"instance-{server.id[:8]}"
            data["keypairs"] = []
            data["tags"] = list(server.tags)
            data["trusted_image_certificates"] = None
            return _nova_object("InstanceCreatePayload", "1.13", data)
        return _nova_object("InstanceActionPayload", "1.9", data)

    def _ip_payloads(self, server: Server) -> list[dict[str, Any]]:
        out = []
        for port_id in server.port_ids:
            port = self.cloud.network.ports.get(port_id)
            if port is None:
                continue
            net = self.cloud.network.networks.get(port["network_id"])
            for ip in port["fixed_ips"]:
                out.append(
                    _nova_object(
                        "IpPayload",
                        "1.0",
                        {
                            "address": ip["ip_address"],
                            "device_name": f"tap{port['id'][:11]}",
                            "label": net["name"] if net else "",
                            "mac": port["mac_address"],
                            "meta": {},
                            "port_uuid": port["id"],
                            "version": 6 if ":" in ip["ip_address"] else 4,
                        },
                    )
                )
        return out

    def _legacy_payload(
        self, server: Server, state_update: dict[str, Any] | None
    ) -> dict[str, Any]:
        f = server.flavor
        gone = server.vm_state == "deleted"

        def legacy_time(when: datetime | None) -> str:
            return "" if when is None else str(when.replace(microsecond=0))

        payload: dict[str, Any] = {
            "tenant_id": server.project_id,
            "user_id": server.user_id,
            "instance_id": server.id,
            "display_name": server.name,
            "reservation_id": server.reservation_id,
            "hostname": server.name,
            "instance_type": f.name,
            "instance_type_id": int(f.id) if f.id.isdigit() else 0,
            "instance_flavor_id": f.id,
            "memory_mb": f.ram,
            "disk_gb": f.disk + f.ephemeral,
            "root_gb": f.disk,
            "ephemeral_gb": f.ephemeral,
            "vcpus": f.vcpus,
            "host": server.host,
            "node": None if server.host is None else f"{server.host}-node",
            "availability_zone": server.availability_zone,
            "cell_name": "",
            "created_at": legacy_time(server.created_at),
            "terminated_at": legacy_time(server.updated_at) if gone else "",
            "deleted_at": legacy_time(server.updated_at) if gone else "",
            "launched_at": legacy_time(server.launched_at),
            "image_ref_url": (
                f"{self.cloud.image_url}/images/{server.image_id}" if server.image_id else ""
            ),
            "os_type": None,
            "kernel_id": "",
            "ramdisk_id": "",
            "state": server.vm_state,
            "state_description": server.task_state or "",
            "progress": "",
            "access_ip_v4": None,
            "access_ip_v6": None,
            "metadata": dict(server.metadata),
            "fixed_ips": [],
            "image_meta": {"base_image_ref": server.image_id} if server.image_id else {},
            "architecture": "x86_64",
        }
        if state_update is not None:
            now = self.cloud.clock.now()
            payload.update(
                old_state=state_update["old_state"],
                old_task_state=state_update["old_task_state"],
                new_task_state=state_update["new_task_state"],
                audit_period_beginning=legacy_time(now.replace(day=1, hour=0, minute=0, second=0)),
                audit_period_ending=legacy_time(now),
                bandwidth={},
            )
        return payload


def _nova_object(name: str, version: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "nova_object.data": data,
        "nova_object.name": name,
        "nova_object.namespace": "nova",
        "nova_object.version": version,
    }


def _version_doc(base: str) -> dict[str, Any]:
    return {
        "id": "v2.1",
        "status": "CURRENT",
        "version": "{}.{}".format(*MAX_MICROVERSION),
        "min_version": "{}.{}".format(*MIN_MICROVERSION),
        "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": f"{base}/compute/v2.1/"}],
        "media-types": [
            {
                "base": "application/json",
                "type": "application/vnd.openstack.compute+json;version=2.1",
            }
        ],
    }


_SORT_KEYS = {"created_at", "updated_at", "display_name", "uuid", "vm_state", "launched_at"}


class ComputeAPI(ServiceAPI):
    name = "compute"
    prefix = "/compute"
    public_endpoints = frozenset({"versions", "version"})
    request_id_headers = ("X-OpenStack-Request-Id", "X-Compute-Request-Id")

    @property
    def state(self) -> ComputeState:
        return self.cloud.compute

    def rules(self) -> list[Rule]:
        r = "/v2.1"
        return [
            Rule("/", endpoint="versions", methods=["GET"]),
            Rule(r, endpoint="version", methods=["GET"]),
            Rule(f"{r}/servers", endpoint="list_servers", methods=["GET"]),
            Rule(f"{r}/servers/detail", endpoint="list_servers_detail", methods=["GET"]),
            Rule(f"{r}/servers", endpoint="create_server", methods=["POST"]),
            Rule(f"{r}/servers/<sid>", endpoint="get_server", methods=["GET"]),
            Rule(f"{r}/servers/<sid>", endpoint="update_server", methods=["PUT"]),
            Rule(f"{r}/servers/<sid>", endpoint="delete_server", methods=["DELETE"]),
            Rule(f"{r}/servers/<sid>/action", endpoint="server_action", methods=["POST"]),
            Rule(f"{r}/servers/<sid>/metadata", endpoint="get_metadata", methods=["GET"]),
            Rule(f"{r}/servers/<sid>/metadata", endpoint="merge_metadata", methods=["POST"]),
            Rule(f"{r}/servers/<sid>/metadata", endpoint="replace_metadata", methods=["PUT"]),
            Rule(f"{r}/servers/<sid>/metadata/<key>", endpoint="get_meta_item", methods=["GET"]),
            Rule(f"{r}/servers/<sid>/metadata/<key>", endpoint="set_meta_item", methods=["PUT"]),
            Rule(
                f"{r}/servers/<sid>/metadata/<key>", endpoint="delete_meta_item", methods=["DELETE"]
            ),
            Rule(
                f"{r}/servers/<sid>/os-volume_attachments",
                endpoint="list_attachments",
                methods=["GET"],
            ),
            Rule(f"{r}/servers/<sid>/os-volume_attachments", endpoint="attach", methods=["POST"]),
            Rule(
                f"{r}/servers/<sid>/os-volume_attachments/<vid>",
                endpoint="detach",
                methods=["DELETE"],
            ),
            Rule(f"{r}/flavors", endpoint="list_flavors", methods=["GET"]),
            Rule(f"{r}/flavors/detail", endpoint="list_flavors", methods=["GET"]),
            Rule(f"{r}/flavors/<fid>", endpoint="get_flavor", methods=["GET"]),
            Rule(f"{r}/os-server-groups", endpoint="list_server_groups", methods=["GET"]),
            Rule(f"{r}/os-keypairs", endpoint="list_keypairs", methods=["GET"]),
            Rule(f"{r}/os-keypairs", endpoint="create_keypair", methods=["POST"]),
            Rule(f"{r}/os-keypairs/<name>", endpoint="get_keypair", methods=["GET"]),
            Rule(f"{r}/os-keypairs/<name>", endpoint="delete_keypair", methods=["DELETE"]),
        ]

    def handle(self, request: Request, ctx_for: Any) -> tuple[Response, Ctx | None]:
        try:
            version = _microversion(request)
        except SimError as err:
            return self.error(err), None
        request.environ["sim.microversion"] = version
        self.state.tick()
        response, ctx = super().handle(request, ctx_for)
        text = "{}.{}".format(*version)
        response.headers["OpenStack-API-Version"] = f"compute {text}"
        response.headers["X-OpenStack-Nova-API-Version"] = text
        response.headers["Vary"] = "OpenStack-API-Version, X-OpenStack-Nova-API-Version"
        return response, ctx

    # -- discovery -------------------------------------------------------------------------
    def versions(self, request: Request, ctx: Ctx | None) -> Response:
        return json_response({"versions": [_version_doc(base_url(request))]})

    def version(self, request: Request, ctx: Ctx | None) -> Response:
        return json_response({"version": _version_doc(base_url(request))})

    # -- rendering -------------------------------------------------------------------------
    def render(self, server: Server, request: Request, ctx: Ctx) -> dict[str, Any]:
        base = base_url(request)
        mv: tuple[int, int] = request.environ.get("sim.microversion", MIN_MICROVERSION)
        f = server.flavor
        links = [
            {"rel": "self", "href": f"{base}/compute/v2.1/servers/{server.id}"},
            {"rel": "bookmark", "href": f"{base}/compute/servers/{server.id}"},
        ]
        addresses: dict[str, list[dict[str, Any]]] = {}
        for port_id in server.port_ids:
            port = self.cloud.network.ports.get(port_id)
            net = self.cloud.network.networks.get(port["network_id"]) if port else None
            if port and net:
                addresses.setdefault(net["name"], []).extend(
                    {
                        "addr": ip["ip_address"],
                        "version": 4,
                        "OS-EXT-IPS:type": "fixed",
                        "OS-EXT-IPS-MAC:mac_addr": port["mac_address"],
                    }
                    for ip in port["fixed_ips"]
                )
        body: dict[str, Any] = {
            "id": server.id,
            "name": server.name,
            "status": server.status,
            "tenant_id": server.project_id,
            "user_id": server.user_id,
            "metadata": dict(server.metadata),
            "hostId": (server.project_id + (server.host or ""))[:56] if server.host else "",
            "image": (
                {
                    "id": server.image_id,
                    "links": [
                        {"rel": "bookmark", "href": f"{base}/compute/images/{server.image_id}"}
                    ],
                }
                if server.image_id
                else ""
            ),
            "created": iso_z(server.created_at),
            "updated": iso_z(server.updated_at),
            "addresses": addresses,
            "accessIPv4": "",
            "accessIPv6": "",
            "links": links,
            "OS-DCF:diskConfig": "MANUAL",
            "progress": 0,
            "OS-EXT-AZ:availability_zone": server.availability_zone,
            "config_drive": "",
            "key_name": server.key_name,
            "OS-SRV-USG:launched_at": iso_micro(server.launched_at),
            "OS-SRV-USG:terminated_at": iso_micro(server.deleted_at),
            "OS-EXT-STS:task_state": server.task_state,
            "OS-EXT-STS:vm_state": server.vm_state,
            "OS-EXT-STS:power_state": server.power_state,
            "os-extended-volumes:volumes_attached": [
                {"id": v, "delete_on_termination": False} for v in server.volume_ids
            ],
        }
        if addresses:  # Nova names the groups of the server's ports, and omits none
            body["security_groups"] = [{"name": "default"}]
        if mv >= (2, 47):
            body["flavor"] = {
                "vcpus": f.vcpus,
                "ram": f.ram,
                "disk": f.disk,
                "ephemeral": f.ephemeral,
                "swap": f.swap,
                "original_name": f.name,
                "extra_specs": {},
            }
        else:
            body["flavor"] = {
                "id": f.id,
                "links": [{"rel": "bookmark", "href": f"{base}/compute/flavors/{f.id}"}],
            }
        if mv >= (2, 9):
            body["locked"] = server.locked
        if mv >= (2, 73):
            body["locked_reason"] = server.locked_reason
        if mv >= (2, 19):
            body["description"] = server.description
        if mv >= (2, 26):
            body["tags"] = list(server.tags)
        if mv >= (2, 63):
            body["trusted_image_certificates"] = None
        if mv >= (2, 71):
            body["server_groups"] = []
        if mv >= (2, 96):
            body["pinned_availability_zone"] = None
        if ctx.is_admin:
            body.update(
                {
                    "OS-EXT-SRV-ATTR:host": server.host,
                    "OS-EXT-SRV-ATTR:hypervisor_hostname": (
                        f"{server.host}-node" if server.host else None
                    ),
                    "OS-EXT-SRV-ATTR:instance_name": f"instance-{server.id[:8]}",
                }
            )
            if mv >= (2, 3):
                body.update(
                    {
                        "OS-EXT-SRV-ATTR:hostname": server.name,
                        "OS-EXT-SRV-ATTR:kernel_id": "",
                        "OS-EXT-SRV-ATTR:launch_index": server.launch_index,
                        "OS-EXT-SRV-ATTR:ramdisk_id": "",
                        "OS-EXT-SRV-ATTR:reservation_id": server.reservation_id,
                        "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda",
                        "OS-EXT-SRV-ATTR:user_data": None,
                    }
                )
        if mv >= (2, 90):  # the hostname is everyone's since 2.90
            body["OS-EXT-SRV-ATTR:hostname"] = server.name
        return body

    # -- servers ---------------------------------------------------------------------------
    def list_servers(self, request: Request, ctx: Ctx | None) -> Response:
        return self._list(request, ctx, detail=False)

    def list_servers_detail(self, request: Request, ctx: Ctx | None) -> Response:
        return self._list(request, ctx, detail=True)

    def _list(self, request: Request, ctx: Ctx | None, *, detail: bool) -> Response:
        assert ctx is not None
        args = request.args
        all_tenants = "all_tenants" in args and args.get("all_tenants", "").lower() not in (
            "0",
            "false",
            "off",
            "no",
            "f",
            "n",
        )
        if all_tenants and not ctx.is_admin:
            raise forbidden(
                "Policy doesn't allow os_compute_api:servers:detail:get_all_tenants to be "
                "performed."
            )
        project = (
            (args.get("project_id") or args.get("tenant_id")) if all_tenants else ctx.project_id
        )
        image = args.get("image")
        status = args.get("status", "").upper() or None
        vm_state = args.get("vm_state")
        user = args.get("user_id") if ctx.is_admin else None
        locked = query_flag(args.get("locked"))
        name_re = re.compile(args["name"]) if args.get("name") else None
        since = parse_time(args["changes-since"]) if args.get("changes-since") else None
        # Deleted servers: only with deleted=true (admins; others' is ignored, as Nova's
        # policy drops it), and alongside the rest with changes-since unless deleted= says.
        deleted = query_flag(args.get("deleted")) if ctx.is_admin else None
        if deleted is None:
            deleted = None if since is not None else False
        sort_key = args.get("sort_key", "created_at")
        if sort_key not in _SORT_KEYS:
            raise bad_request(f"Invalid sort_key {sort_key}")
        reverse = args.get("sort_dir", "desc") != "asc"
        limit = min(int(args.get("limit", 1000)), 1000)
        marker = args.get("marker")
        with self.cloud.lock:
            state = self.state
            pool = (
                list(state.servers.values())
                if deleted is False
                else list(state.deleted.values())
                if deleted
                else [*state.servers.values(), *state.deleted.values()]
            )
            rows = [
                s
                for s in pool
                if (project is None or s.project_id == project)
                and (image is None or s.image_id == image)
                and (status is None or s.status == status)
                and (vm_state is None or s.vm_state == vm_state)
                and (user is None or s.user_id == user)
                and (locked is None or s.locked == locked)
                and (name_re is None or name_re.search(s.name))
                and (since is None or s.updated_at >= since)
            ]
            attr = {"display_name": "name", "uuid": "id"}.get(sort_key, sort_key)
            rows.sort(key=lambda s: (getattr(s, attr) or s.created_at, s.id), reverse=reverse)
            if marker:
                idx = next((i for i, s in enumerate(rows) if s.id == marker), None)
                if idx is None:
                    raise bad_request(f"marker [{marker}] not found")
                rows = rows[idx + 1 :]
            page = rows[:limit]
            if detail:
                items = [self.render(s, request, ctx) for s in page]
            else:
                items = [
                    {
                        "id": s.id,
                        "name": s.name,
                        "links": [
                            {
                                "rel": "self",
                                "href": f"{base_url(request)}/compute/v2.1/servers/{s.id}",
                            }
                        ],
                    }
                    for s in page
                ]
        body: dict[str, Any] = {"servers": items}
        if len(page) == limit and len(rows) > 0 and page:
            params = request.args.copy()
            params["marker"] = page[-1].id
            params["limit"] = str(limit)
            query = "&".join(f"{k}={v}" for k, v in params.items(multi=True))
            path = "servers/detail" if detail else "servers"
            body["servers_links"] = [
                {"rel": "next", "href": f"{base_url(request)}/compute/v2.1/{path}?{query}"}
            ]
        return json_response(body)

    def get_server(self, request: Request, ctx: Ctx | None, sid: str) -> Response:
        assert ctx is not None
        with self.cloud.lock:
            return json_response({"server": self.render(self.state.get(ctx, sid), request, ctx)})

    def create_server(self, request: Request, ctx: Ctx | None) -> Response:
        assert ctx is not None and ctx.project_id is not None
        spec = read_json(request).get("server") or {}
        if not spec.get("name"):
            raise bad_request("Invalid input for field/attribute server: 'name' is required")
        networks: list[str] = []
        requested = spec.get("networks", "auto")
        if isinstance(requested, list):
            for item in requested:
                if item.get("uuid"):
                    networks.append(item["uuid"])
        elif requested == "auto":
            own = [
                n["id"]
                for n in self.cloud.network.networks.values()
                if n["project_id"] == ctx.project_id and not n["router:external"]
            ]
            networks = own[:1]
        volumes = [
            b["uuid"]
            for b in spec.get("block_device_mapping_v2") or []
            if b.get("source_type") == "volume" and b.get("uuid")
        ]
        image_id = spec.get("imageRef") or None
        if image_id:
            try:
                image = self.cloud.image.get(ctx, image_id)
            except SimError as exc:
                raise bad_request(f"Image {image_id} could not be found.") from exc
            if image.status != "active":
                raise bad_request(f"Image {image_id} is not active.")
        flavor_ref = str(spec.get("flavorRef", "")).rstrip("/").rsplit("/", 1)[-1]
        server = self.state.create_server(
            project_id=ctx.project_id,
            user_id=ctx.user_id,
            name=spec["name"],
            image_id=image_id,
            flavor=flavor_ref or "m1.small",
            metadata=spec.get("metadata"),
            networks=networks,
            volume_ids=volumes,
            key_name=spec.get("key_name"),
            ctx=ctx,
            asynchronous=True,
        )
        base = base_url(request)
        return json_response(
            {
                "server": {
                    "id": server.id,
                    "links": [{"rel": "self", "href": f"{base}/compute/v2.1/servers/{server.id}"}],
                    "OS-DCF:diskConfig": "MANUAL",
                    "security_groups": [{"name": "default"}],
                    "adminPass": "sim-password",
                }
            },
            202,
        )

    def update_server(self, request: Request, ctx: Ctx | None, sid: str) -> Response:
        assert ctx is not None
        spec = read_json(request).get("server") or {}
        with self.cloud.transaction():
            server = self.state.get(ctx, sid)
            self.state._check_lock(ctx, server)
            if "name" in spec:
                server.name = spec["name"]
            if "description" in spec:
                server.description = spec["description"]
            server.updated_at = self.cloud.clock.now()
            return json_response({"server": self.render(server, request, ctx)})

    def delete_server(self, request: Request, ctx: Ctx | None, sid: str) -> Response:
        assert ctx is not None
        self.state.delete(ctx, sid, asynchronous=True)
        return empty(204)

    def server_action(self, request: Request, ctx: Ctx | None, sid: str) -> Response:
        assert ctx is not None
        body = read_json(request)
        if not isinstance(body, dict) or len(body) != 1:
            raise bad_request("Malformed request body")
        name, arg = next(iter(body.items()))
        if name == "createImage":
            return self._create_image(request, ctx, sid, arg)
        if name not in TRANSITIONS and name not in ("lock", "unlock"):
            raise not_implemented(self.name, "POST", f"{request.path} {{{name!r}: ...}}")
        self.state.action(ctx, sid, name, arg, asynchronous=True)
        if name == "rescue":
            return json_response({"adminPass": "sim-rescue-password"})
        return empty(202)

    def _create_image(self, request: Request, ctx: Ctx, sid: str, arg: Any) -> Response:
        spec = arg if isinstance(arg, dict) else {}
        name = spec.get("name")
        if not isinstance(name, str) or not name.strip():
            raise bad_request("Invalid input for field/attribute name.")
        metadata = spec.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise bad_request("Invalid input for field/attribute metadata.")
        image_id = self.state.snapshot(
            ctx, sid, name, {str(k): str(v) for k, v in metadata.items()}, asynchronous=True
        )
        mv: tuple[int, int] = request.environ["sim.microversion"]
        if mv >= (2, 45):
            return json_response({"image_id": image_id}, 202)
        return empty(202, {"Location": f"{self.cloud.image_url}/v2/images/{image_id}"})

    # -- metadata --------------------------------------------------------------------------
    def get_metadata(self, request: Request, ctx: Ctx | None, sid: str) -> Response:
        assert ctx is not None
        return json_response({"metadata": dict(self.state.get(ctx, sid).metadata)})

    def merge_metadata(self, request: Request, ctx: Ctx | None, sid: str) -> Response:
        assert ctx is not None
        items = read_json(request).get("metadata") or {}
        server = self.state.set_metadata(ctx, sid, items)
        return json_response({"metadata": dict(server.metadata)})

    def replace_metadata(self, request: Request, ctx: Ctx | None, sid: str) -> Response:
        assert ctx is not None
        items = read_json(request).get("metadata") or {}
        server = self.state.set_metadata(ctx, sid, items, replace=True)
        return json_response({"metadata": dict(server.metadata)})

    def get_meta_item(self, request: Request, ctx: Ctx | None, sid: str, key: str) -> Response:
        assert ctx is not None
        meta = self.state.get(ctx, sid).metadata
        if key not in meta:
            raise not_found("Metadata item", key)
        return json_response({"meta": {key: meta[key]}})

    def set_meta_item(self, request: Request, ctx: Ctx | None, sid: str, key: str) -> Response:
        assert ctx is not None
        item = read_json(request).get("meta") or {}
        if key not in item or len(item) != 1:
            raise bad_request("Request body and URI mismatch")
        self.state.set_metadata(ctx, sid, item)
        return json_response({"meta": {key: str(item[key])}})

    def delete_meta_item(self, request: Request, ctx: Ctx | None, sid: str, key: str) -> Response:
        assert ctx is not None
        self.state.delete_metadata(ctx, sid, key)
        return empty(204)

    # -- volume attachments ----------------------------------------------------------------
    def list_attachments(self, request: Request, ctx: Ctx | None, sid: str) -> Response:
        assert ctx is not None
        server = self.state.get(ctx, sid)
        return json_response(
            {
                "volumeAttachments": [
                    {
                        "id": v,
                        "volumeId": v,
                        "serverId": server.id,
                        "device": f"/dev/vd{chr(98 + i)}",
                        "tag": None,
                        "delete_on_termination": False,
                    }
                    for i, v in enumerate(server.volume_ids)
                ]
            }
        )

    def attach(self, request: Request, ctx: Ctx | None, sid: str) -> Response:
        assert ctx is not None
        spec = read_json(request).get("volumeAttachment") or {}
        vid = spec.get("volumeId", "")
        self.state.attach_volume(ctx, sid, vid)
        return json_response(
            {
                "volumeAttachment": {
                    "id": vid,
                    "volumeId": vid,
                    "serverId": sid,
                    "device": "/dev/vdb",
                }
            }
        )

    def detach(self, request: Request, ctx: Ctx | None, sid: str, vid: str) -> Response:
        assert ctx is not None
        self.state.detach_volume(ctx, sid, vid)
        return empty(202)

    # -- flavors and the rest project_cleanup walks ----------------------------------------
    def list_flavors(self, request: Request, ctx: Ctx | None) -> Response:
        base = base_url(request)
        return json_response({"flavors": [f.to_api(base) for f in self.state.flavors.values()]})

    def get_flavor(self, request: Request, ctx: Ctx | None, fid: str) -> Response:
        flavor = self.state.flavors.get(fid)
        if flavor is None:
            raise not_found("Flavor", fid)
        return json_response({"flavor": flavor.to_api(base_url(request))})

    def list_server_groups(self, request: Request, ctx: Ctx | None) -> Response:
        return json_response({"server_groups": []})

    # -- keypairs (a user's, not a project's) ---------------------------------------------
    def _keypair_owner(self, request: Request, ctx: Ctx) -> str:
        mv: tuple[int, int] = request.environ["sim.microversion"]
        wanted = request.args.get("user_id") if mv >= (2, 10) else None
        if wanted and wanted != ctx.user_id and not ctx.is_admin:
            raise forbidden(
                "Policy doesn't allow os_compute_api:os-keypairs:index to be performed."
            )
        return wanted or ctx.user_id

    def list_keypairs(self, request: Request, ctx: Ctx | None) -> Response:
        assert ctx is not None
        mv: tuple[int, int] = request.environ["sim.microversion"]
        owner = self._keypair_owner(request, ctx)
        with self.cloud.lock:
            rows = sorted(
                (k for (uid, _), k in self.state.keypairs.items() if uid == owner),
                key=lambda k: k.name,
            )
            return json_response(
                {"keypairs": [{"keypair": k.to_api(mv, detail=False)} for k in rows]}
            )

    def get_keypair(self, request: Request, ctx: Ctx | None, name: str) -> Response:
        assert ctx is not None
        mv: tuple[int, int] = request.environ["sim.microversion"]
        with self.cloud.lock:
            found = self.state.keypairs.get((self._keypair_owner(request, ctx), name))
            if found is None:
                raise not_found("Keypair", name)
            return json_response({"keypair": found.to_api(mv, detail=True)})

    def create_keypair(self, request: Request, ctx: Ctx | None) -> Response:
        assert ctx is not None
        mv: tuple[int, int] = request.environ["sim.microversion"]
        spec = read_json(request).get("keypair") or {}
        name = spec.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[\w .@-]{1,255}", name):
            raise bad_request("Invalid input for field/attribute name.")
        key_type = spec.get("type", "ssh") if mv >= (2, 2) else "ssh"
        if key_type not in ("ssh", "x509"):
            raise bad_request("Invalid input for field/attribute type.")
        owner = spec.get("user_id") if mv >= (2, 10) and ctx.is_admin else None
        owner = owner or ctx.user_id
        public_key = spec.get("public_key")
        private_key = None
        if not public_key:
            if mv >= (2, 92):
                raise bad_request(
                    "Invalid input for field/attribute keypair: 'public_key' is required"
                )
            private_key, public_key = generate_keypair()
        with self.cloud.lock:
            if (owner, name) in self.state.keypairs:
                raise conflict(f"Key pair '{name}' already exists.", "conflictingRequest")
            keypair = Keypair(
                name=name,
                user_id=owner,
                public_key=public_key,
                fingerprint=fingerprint(public_key),
                created_at=self.cloud.clock.now(),
                type=key_type,
                id=len(self.state.keypairs) + 1,
            )
            self.state.keypairs[(owner, name)] = keypair
        body = keypair.to_api(mv, detail=False)
        body["user_id"] = owner
        if private_key:
            body["private_key"] = private_key
        return json_response({"keypair": body}, 201 if mv >= (2, 2) else 200)

    def delete_keypair(self, request: Request, ctx: Ctx | None, name: str) -> Response:
        assert ctx is not None
        mv: tuple[int, int] = request.environ["sim.microversion"]
        with self.cloud.lock:
            owner = self._keypair_owner(request, ctx)
            if self.state.keypairs.pop((owner, name), None) is None:
                raise not_found("Keypair", name)
        return empty(204 if mv >= (2, 2) else 202)
