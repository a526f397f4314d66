"""What the sweeper needs from the cloud, and its adapter on an openstacksdk Connection."""

from __future__ import annotations

import contextlib
import threading
import uuid
import weakref
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from reclaim.models.neutron import SecurityGroupRule
from reclaim.sweeper.rules import USER_PROPERTIES, ImageSnapshot, ProjectSnapshot, ServerSnapshot


class CloudError(RuntimeError):
    """A cloud call failed; ``transient`` for 5xx, 429, timeouts and dropped connections."""

    def __init__(
        self,
        message: str,
        *,
        transient: bool,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status
        self.request_id = request_id


@dataclass(frozen=True)
class ActionResult:
    """A mutating call that succeeded, and the request ids to find it in the cloud's logs."""

    request_ids: tuple[str, ...] = ()
    gone: bool = False


#: Why a server is exempt from every action (None: it is not); :func:`is_exempt_server`.
Exemption = Callable[[ServerSnapshot], str | None]
#: Told, one line at a time, what a long action is doing ("project P: deleting Server S
#: (name)"); called from the cleanup's threads. The command decides how to show it.
Progress = Callable[[str], None]


class CloudPort(Protocol):
    """Reads and actions on the cloud. Reads return None for a resource that does not exist
    (404) and raise :class:`CloudError` for anything else that is not a full answer."""

    def server(self, server_id: str) -> ServerSnapshot | None: ...

    def shelve_server(self, server_id: str) -> ActionResult: ...

    def delete_server(self, server_id: str) -> ActionResult: ...

    def project(self, project_id: str) -> ProjectSnapshot | None: ...

    def user_exists(self, user_id: str) -> bool: ...

    def image(self, image_id: str) -> ImageSnapshot | None: ...

    def owner_images(self, owner_type: str, owner_id: str) -> list[ImageSnapshot]: ...

    def servers_from_image(self, image_id: str) -> list[ServerRef]: ...

    def image_members(self, image_id: str) -> list[str]: ...

    def delete_image(self, image_id: str) -> ActionResult: ...

    def security_group_rule(self, rule_id: str) -> SecurityGroupRule | None: ...

    def delete_security_group_rule(self, rule_id: str) -> ActionResult: ...

    def project_inventory(self, project_id: str) -> dict[str, list[str]]: ...

    def spared(self, project_id: str, exempt: Exemption) -> Spared: ...

    def cleanup_project(
        self, project_id: str, *, dry_run: bool, exempt: Exemption | None = None
    ) -> CleanupResult: ...


def _parse_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


#: The compute microversion of the re-check's read: the first to say whether a server is
#: locked (2.9); without it the re-check could only wait.
SERVER_MICROVERSION = "2.9"


def snapshot_of(server: dict[str, Any]) -> ServerSnapshot:
    """A :class:`ServerSnapshot` from Nova's ``GET /servers/{id}`` JSON (microversion 2.9+)."""
    updated = _parse_time(server.get("updated"))
    if updated is not None and updated.tzinfo is None:
        updated = None  # no zone: cannot be compared safely (fail closed)
    metadata = server.get("metadata") or {}
    locked = server.get("locked")
    return ServerSnapshot(
        id=str(server["id"]),
        status=str(server.get("status") or "").upper(),
        project_id=server.get("tenant_id") or None,
        updated_at=updated,
        locked=bool(locked) if locked is not None else None,
        metadata={str(k): str(v) for k, v in dict(metadata).items()},
        vm_state=server.get("OS-EXT-STS:vm_state") or None,
        task_state=server.get("OS-EXT-STS:task_state") or None,
    )


def _translate(exc: Exception, what: str, request_id: str) -> CloudError:
    from keystoneauth1 import exceptions as ksa
    from openstack import exceptions as sdk

    if isinstance(exc, sdk.HttpException):
        status = exc.status_code
        transient = status is None or status >= 500 or status == 429
        return CloudError(
            f"{what}: {status} {exc}",
            transient=transient,
            status=status,
            request_id=exc.request_id or request_id,
        )
    if isinstance(exc, ksa.ConnectionError | ksa.http.HttpError):
        status = getattr(exc, "http_status", None)
        transient = status is None or status >= 500 or status == 429
        return CloudError(
            f"{what}: {exc}", transient=transient, status=status, request_id=request_id
        )
    return CloudError(
        f"{what}: {type(exc).__name__}: {exc}", transient=False, request_id=request_id
    )


def new_request_id() -> str:
    """A global request id (``req-<uuid>``) sent with an action so logs can be matched."""
    return f"req-{uuid.uuid4()}"


# -- projects, images, security-group rules, project cleanup ---------------------------------

#: Image visibilities whose images other projects can use (the owner's "shared" images).
SHARED_VISIBILITIES = ("shared", "community", "public")
#: Neutron's device owners of a router's interface ports (the interfaces that tie a router
#: to a subnet).
ROUTER_INTERFACES = (
    "network:router_interface",
    "network:router_interface_distributed",
    "network:ha_router_replicated_interface",
)


@dataclass(frozen=True)
class ServerRef:
    """A server found by a listing: who to tell about it."""

    id: str
    name: str
    project_id: str | None
    user_id: str | None


@dataclass(frozen=True)
class Spared:
    """What a project cleanup keeps: the exempt servers (with why) and the ids of what they
    use (attached volumes and their snapshots, their ports, those ports' networks, subnets,
    security groups and floating IPs, and the routers, with their interfaces, on those
    networks)."""

    servers: dict[str, str] = field(default_factory=dict)
    ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class CleanupResult:
    """What a project cleanup did: the resources it chose (deleted unless ``dry_run``), the
    ones its guard refused (another project's), the request ids of its connection.

    ``deleted``, ``kept`` and ``leftovers`` are read back from the cloud after the cleanup
    (an administrator's listing before and after, and the project's Swift containers), by
    type: what is gone, what was spared (exempt servers and what they use), and what else
    the project still owns (``default`` security group excepted).
    """

    dry_run: bool
    identified: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()
    request_ids: tuple[str, ...] = ()
    granted_role: bool = False
    leftovers: dict[str, list[str]] = field(default_factory=dict)
    #: why the cleanup stopped early (a timeout), if it did
    error: str = ""
    deleted: dict[str, list[str]] = field(default_factory=dict)
    kept: dict[str, list[str]] = field(default_factory=dict)
    #: exempt server id -> why it is exempt
    exempt: dict[str, str] = field(default_factory=dict)
    #: services the cloud's catalog does not have, so not cleaned (``object-store``)
    skipped: tuple[str, ...] = ()
    #: the project's router interfaces on other projects' networks, detached first
    detached: tuple[str, ...] = ()


def _s(value: Any) -> str:
    return "" if value is None else str(value)


def image_snapshot(image: Any) -> ImageSnapshot:
    """An :class:`ImageSnapshot` from an ``openstack.image.v2.image.Image``."""
    props = dict(getattr(image, "properties", None) or {})
    for key in USER_PROPERTIES:
        top = getattr(image, key, None) if key != "user_id" else None
        if top and key not in props:
            props[key] = top
    return ImageSnapshot(
        id=str(image.id),
        name=_s(getattr(image, "name", "")),
        owner=getattr(image, "owner", None) or getattr(image, "owner_id", None) or None,
        visibility=_s(getattr(image, "visibility", "")),
        protected=bool(getattr(image, "is_protected", False)),
        os_hidden=bool(getattr(image, "is_hidden", False)),
        status=_s(getattr(image, "status", "")),
        properties={str(k): _s(v) for k, v in props.items() if not isinstance(v, dict | list)},
    )


def _project_of(obj: Any) -> str | None:
    """The owning project a resource states (project_id, owner, tenant_id), else None."""
    for attr in ("project_id", "owner", "tenant_id", "owner_id"):
        value = getattr(obj, attr, None)
        if value:
            return str(value)
    return None


class ProjectGuard:
    """``resource_evaluation_fn`` for ``project_cleanup``: True only for the target's own,
    never for what ``spared`` names (exempt servers and what they use).

    A resource whose owner attribute names another project is refused (and recorded); a
    resource that states no owner is accepted only when the service scopes it by the
    token's account (Swift containers and objects under ``AUTH_<target>``) or when an
    administrator's listing of the target project holds its id (``known``).
    """

    def __init__(
        self,
        project_id: str,
        known: set[str],
        swift_account_ok: bool,
        spared: frozenset[str] = frozenset(),
        on_accept: Callable[[Any], None] | None = None,
    ) -> None:
        self.project_id = project_id
        self.on_accept = on_accept
        self.known = known
        self.swift_account_ok = swift_account_ok
        self.spared = spared
        self.accepted: list[str] = []
        self.refused: list[str] = []
        self.kept: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, obj: Any, filters: Any = None, identified: Any = None) -> bool:
        kind = type(obj).__name__
        owner = _project_of(obj)
        if self.spared and (
            str(getattr(obj, "id", "")) in self.spared
            or str(getattr(obj, "volume_id", None)) in self.spared
        ):
            # an exempt server, what it uses, and snapshots and backups of its volumes
            with self._lock:
                self.kept.append(f"{kind}:{getattr(obj, 'id', '?')}")
            return False
        if owner is not None:
            ok = owner == self.project_id
        elif type(obj).__module__.startswith("openstack.object_store"):
            ok = self.swift_account_ok
        else:
            ok = str(getattr(obj, "id", "")) in self.known
        with self._lock:
            (self.accepted if ok else self.refused).append(f"{kind}:{getattr(obj, 'id', '?')}")
        if ok and self.on_accept is not None:
            # project_cleanup deletes it next (unless a dry run); a failure to show it must
            # not change what is deleted (openstacksdk would skip the resource)
            with contextlib.suppress(Exception):
                self.on_accept(obj)
        return ok


def cleanup_connector(cloud_name: str) -> Callable[[str, Executor, str], Any]:
    """Connections for project cleanup from a clouds.yaml entry (``cloud_name``) naming a
    user without any admin role: each is rescoped to the target project's id."""

    def connect(project_id: str, pool: Executor, request_id: str) -> Any:
        import openstack.config
        import openstack.connection

        region = openstack.config.OpenStackConfig().get_one(cloud=cloud_name)
        config = dict(region.config)
        auth = dict(config.get("auth") or {})
        for key in ("project_name", "project_domain_name", "project_domain_id", "tenant_name"):
            auth.pop(key, None)
        auth["project_id"] = project_id
        return openstack.connection.Connection(
            auth_type=config.get("auth_type", "password"),
            auth=auth,
            region_name=region.region_name,
            interface=config.get("interface", "public"),
            identity_api_version="3",
            pool_executor=pool,
            global_request_id=request_id,
        )

    return connect


_threads = threading.local()


def with_request_id(conn: Any, request_id: str) -> Any:
    """``conn``, sending ``request_id`` as ``X-OpenStack-Request-ID`` on its next requests.

    ``Connection.global_request`` builds a new Connection, and then each service proxy it
    is asked for: about 10 ms of CPU a call, more than the request itself. So each thread
    makes that copy once per connection and only changes its id per call; the copy is the
    thread's own, so calls running at the same time never share an id.
    """
    copies: weakref.WeakKeyDictionary[Any, Any] | None = getattr(_threads, "copies", None)
    if copies is None:
        copies = _threads.copies = weakref.WeakKeyDictionary()
    tagged = copies.get(conn)
    if tagged is None:
        tagged = copies[conn] = conn.global_request(request_id)
    else:
        tagged.set_global_request_id(request_id)
    return tagged


def _identity_get(conn: Any, path: str, key: str) -> Any:
    """A Keystone record as JSON; None on 404 (the raw session does not raise on it)."""
    response = conn.identity.get(path)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json()[key]


def _read(what: str, call: Callable[[Any], Any], conn: Any) -> Any:
    """Run a read with a fresh request id; None on 404, CloudError on anything else."""
    from keystoneauth1 import exceptions as ksa
    from openstack import exceptions as sdk

    rid = new_request_id()
    try:
        return call(with_request_id(conn, rid))
    except (sdk.NotFoundException, ksa.http.NotFound):
        return None
    except Exception as exc:
        raise _translate(exc, what, rid) from exc


def _listing(what: str, call: Callable[[Any], Any], conn: Any) -> list[Any]:
    """A complete listing or CloudError (a 404 on a listing is an error too: fail closed)."""
    rid = new_request_id()
    try:
        return list(call(with_request_id(conn, rid)))
    except Exception as exc:
        raise _translate(exc, what, rid) from exc


def _image_query(query: dict[str, Any]) -> Callable[[Any], Any]:
    return lambda c: c.image.images(**query)


def _rule_model(rule: Any) -> SecurityGroupRule:
    return SecurityGroupRule(
        id=str(rule.id),
        security_group_id=getattr(rule, "security_group_id", None),
        project_id=getattr(rule, "project_id", None) or getattr(rule, "tenant_id", None),
        direction=getattr(rule, "direction", None),
        ethertype=getattr(rule, "ether_type", None),
        protocol=getattr(rule, "protocol", None),
        port_range_min=getattr(rule, "port_range_min", None),
        port_range_max=getattr(rule, "port_range_max", None),
        remote_ip_prefix=getattr(rule, "remote_ip_prefix", None),
        remote_group_id=getattr(rule, "remote_group_id", None),
    )


def _label(obj: Any) -> str:
    name = getattr(obj, "name", None)
    return f"{obj.id} ({name})" if name else str(obj.id)


def _kind_label(obj: Any) -> str:
    """``Server 0f3c... (name)``: what a progress line says is being deleted."""
    return f"{type(obj).__name__} {_label(obj)}"


def _images_of_project(conn: Any, project_id: str) -> list[Any]:
    """Every image the project owns, hidden ones included (Glance hides them by default)."""
    out: dict[str, Any] = {}
    for hidden in (False, True):
        for img in conn.image.images(owner=project_id, visibility="all", is_hidden=hidden):
            if getattr(img, "owner", None) == project_id:
                out[img.id] = img
    return list(out.values())


def _inventory(conn: Any, project_id: str) -> dict[str, list[str]]:
    """An administrator's listing of what the project still owns (Swift excepted). A
    router's interfaces are listed apart from the other ports, by router and subnet."""
    p = project_id
    default_sgs = "default"
    ports = list(conn.network.ports(project_id=p))
    interfaces = [x for x in ports if getattr(x, "device_owner", None) in ROUTER_INTERFACES]
    return {
        "servers": [_label(x) for x in conn.compute.servers(all_projects=True, project_id=p)],
        "volumes": [_label(x) for x in conn.block_storage.volumes(all_projects=True, project_id=p)],
        "snapshots": [
            _label(x) for x in conn.block_storage.snapshots(all_projects=True, project_id=p)
        ],
        "images": [_label(x) for x in _images_of_project(conn, p)],
        "networks": [_label(x) for x in conn.network.networks(project_id=p)],
        "subnets": [_label(x) for x in conn.network.subnets(project_id=p)],
        "routers": [_label(x) for x in conn.network.routers(project_id=p)],
        "router_interfaces": [_interface_label(x) for x in interfaces],
        "ports": [_label(x) for x in ports if x.id not in {i.id for i in interfaces}],
        "floating_ips": [str(x.id) for x in conn.network.ips(project_id=p)],
        "security_groups": [
            _label(x)
            for x in conn.network.security_groups(project_id=p)
            if getattr(x, "name", None) != default_sgs
        ],
    }


def _interface_label(port: Any) -> str:
    """``port-id (router R, subnet S)``: a router interface as the summary names it."""
    subnets = ", ".join(
        f"subnet {f['subnet_id']}" for f in getattr(port, "fixed_ips", None) or () if f
    )
    return f"{port.id} (router {port.device_id}{', ' + subnets if subnets else ''})"


def _ids(inventory: dict[str, list[str]]) -> set[str]:
    return {entry.split(" ", 1)[0] for entries in inventory.values() for entry in entries}


def _entry_id(entry: str) -> str:
    return entry.split(" ", 1)[0]


def _spared(conn: Any, project_id: str, exempt: Exemption) -> Spared:
    """The exempt servers of a project and the ids of everything they use (admin reads)."""
    p = project_id
    servers: dict[str, str] = {}
    volumes: set[str] = set()
    for s in conn.compute.servers(all_projects=True, project_id=p):
        snap = ServerSnapshot(
            id=str(s.id),
            status=_s(getattr(s, "status", "")).upper(),
            project_id=getattr(s, "project_id", None) or p,
            updated_at=None,
            locked=None,
            metadata={str(k): _s(v) for k, v in dict(getattr(s, "metadata", None) or {}).items()},
        )
        why = exempt(snap)
        if why:
            servers[snap.id] = why
            volumes |= {str(v["id"]) for v in getattr(s, "attached_volumes", None) or ()}
    if not servers:
        return Spared()
    for v in conn.block_storage.volumes(all_projects=True, project_id=p):
        if any(str(a.get("server_id")) in servers for a in getattr(v, "attachments", None) or ()):
            volumes.add(str(v.id))
    ports: set[str] = set()
    networks: set[str] = set()
    subnets: set[str] = set()
    groups: set[str] = set()
    for sid in servers:
        for port in conn.network.ports(device_id=sid):
            ports.add(str(port.id))
            networks.add(str(port.network_id))
            subnets |= {str(f["subnet_id"]) for f in port.fixed_ips or () if f.get("subnet_id")}
            groups |= {str(g) for g in getattr(port, "security_group_ids", None) or ()}
    routers: set[str] = set()
    for net in networks:
        for port in conn.network.ports(network_id=net):
            if port.device_owner in ROUTER_INTERFACES and port.device_id:
                routers.add(str(port.device_id))
                ports.add(str(port.id))
    ips = {str(ip.id) for ip in conn.network.ips(project_id=p) if str(ip.port_id) in ports}
    snapshots = {
        str(x.id)
        for x in conn.block_storage.snapshots(all_projects=True, project_id=p)
        if str(x.volume_id) in volumes
    }
    ids = set(servers) | volumes | snapshots | ports | networks | subnets | groups | routers | ips
    return Spared(servers, frozenset(ids))


def split_spared(
    inventory: dict[str, list[str]], spared: frozenset[str]
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(kept, left): an inventory's entries that are spared, and the others, by type."""
    kept: dict[str, list[str]] = {}
    left: dict[str, list[str]] = {}
    for kind, entries in inventory.items():
        for entry in entries:
            (kept if _entry_id(entry) in spared else left).setdefault(kind, []).append(entry)
    return kept, left


def _token_roles(conn: Any) -> tuple[str | None, list[str]]:
    access = conn.session.auth.get_access(conn.session)
    return access.project_id, [r.lower() for r in access.role_names]


def _has_service(conn: Any, service_type: str) -> bool:
    """Whether the cloud's catalog has the service (read from the token: no request)."""
    return bool(conn.has_service(service_type))


def _containers(conn: Any, project_id: str, rid: str) -> list[str]:
    try:
        return [str(c.name) for c in conn.object_store.containers()]
    except Exception as exc:
        raise _translate(exc, f"containers of {project_id}", rid) from exc


def _foreign_interfaces(
    conn: Any, project_id: str, guard: ProjectGuard, rid: str
) -> list[tuple[str, str]]:
    """(router, port) of the project's router interfaces on networks it does not own (a
    shared network of another project): ``project_cleanup`` detaches only interfaces on
    the project's own networks, and a router with a port left cannot be deleted. Both the
    router and the port must be the project's own and not spared; the network stays."""

    def mine(obj: Any) -> bool:
        return _project_of(obj) == project_id and str(obj.id) not in guard.spared

    try:
        own = {str(n.id) for n in conn.network.networks(project_id=project_id)}
        found: list[tuple[str, str]] = []
        for router in filter(mine, conn.network.routers(project_id=project_id)):
            found.extend(
                (str(router.id), str(port.id))
                for port in conn.network.ports(device_id=router.id)
                if port.device_owner in ROUTER_INTERFACES
                and str(port.network_id) not in own
                and mine(port)
            )
        return found
    except Exception as exc:
        raise _translate(exc, f"router interfaces of {project_id}", rid) from exc


def _floating_ips(conn: Any, project_id: str, guard: ProjectGuard, rid: str) -> list[str]:
    """The project's floating IPs the guard lets go. ``project_cleanup`` judges floating IPs
    with its own rule, not the caller's (it would delete an exempt server's), so reclaim
    deletes them itself, before the routers they need go."""
    try:
        return [str(ip.id) for ip in conn.network.ips(project_id=project_id) if guard(ip)]
    except Exception as exc:
        raise _translate(exc, f"floating IPs of {project_id}", rid) from exc


def _delete_ip(conn: Any, ip_id: str, rid: str) -> None:
    try:
        conn.network.delete_ip(ip_id, ignore_missing=True)
    except Exception as exc:
        raise _translate(exc, f"DELETE floating IP {ip_id}", rid) from exc


def _detach(conn: Any, router_id: str, port_id: str, rid: str) -> None:
    try:
        conn.network.remove_interface_from_router(router_id, port_id=port_id)
    except Exception as exc:
        raise _translate(exc, f"detach port {port_id} from router {router_id}", rid) from exc


class _OpenStackExtras:
    """Image, project, rule and cleanup calls of :class:`OpenStackCloud`."""

    conn: Any
    cleanup_connect: Callable[[str, Executor, str], Any] | None
    cleanup_user_id: str | None
    cleanup_role: str
    cleanup_timeout: float
    progress: Progress | None

    def project(self, project_id: str) -> ProjectSnapshot | None:
        def get(c: Any) -> Any:
            return _identity_get(c, f"/projects/{project_id}", "project")

        body = _read(f"GET project {project_id}", get, self.conn)
        if body is None:
            return None
        core = {"id", "name", "enabled", "tags", "links", "domain_id", "parent_id", "is_domain"}
        return ProjectSnapshot(
            id=str(body["id"]),
            name=_s(body.get("name")),
            enabled=bool(body.get("enabled", True)),
            tags=tuple(str(t) for t in body.get("tags") or ()),
            properties={
                k: _s(v)
                for k, v in body.items()
                if k not in core and not isinstance(v, dict | list)
            },
        )

    def user_exists(self, user_id: str) -> bool:
        def get(c: Any) -> Any:
            return _identity_get(c, f"/users/{user_id}", "user")

        return _read(f"GET user {user_id}", get, self.conn) is not None

    def image(self, image_id: str) -> ImageSnapshot | None:
        img = _read(f"GET image {image_id}", lambda c: c.image.get_image(image_id), self.conn)
        return None if img is None else image_snapshot(img)

    def owner_images(self, owner_type: str, owner_id: str) -> list[ImageSnapshot]:
        found: dict[str, ImageSnapshot] = {}
        for vis in SHARED_VISIBILITIES:
            for hidden in (False, True):
                query: dict[str, Any] = {"visibility": vis, "is_hidden": hidden}
                if owner_type == "project":
                    query["owner"] = owner_id
                rows = _listing(f"GET images {query}", _image_query(query), self.conn)
                for img in rows:
                    snap = image_snapshot(img)
                    mine = (
                        snap.owner == owner_id
                        if owner_type == "project"
                        else snap.user_id == owner_id
                    )
                    if mine and snap.visibility in SHARED_VISIBILITIES:
                        found[snap.id] = snap
        return sorted(found.values(), key=lambda i: i.id)

    def servers_from_image(self, image_id: str) -> list[ServerRef]:
        rows = _listing(
            f"GET servers image={image_id}",
            lambda c: c.compute.servers(all_projects=True, image=image_id),
            self.conn,
        )
        return [
            ServerRef(
                id=str(s.id),
                name=_s(getattr(s, "name", "")),
                project_id=getattr(s, "project_id", None) or None,
                user_id=getattr(s, "user_id", None) or None,
            )
            for s in rows
        ]

    def image_members(self, image_id: str) -> list[str]:
        rows = _listing(
            f"GET image {image_id} members", lambda c: c.image.members(image_id), self.conn
        )
        return sorted(str(m.member_id) for m in rows)

    def _mutate(self, what: str, call: Callable[[Any], Any]) -> ActionResult:
        from openstack import exceptions as sdk

        rid = new_request_id()
        try:
            call(with_request_id(self.conn, rid))
        except sdk.NotFoundException:
            return ActionResult((rid,), gone=True)
        except Exception as exc:
            raise _translate(exc, what, rid) from exc
        return ActionResult((rid,))

    def delete_image(self, image_id: str) -> ActionResult:
        return self._mutate(
            f"DELETE image {image_id}",
            lambda c: c.image.delete_image(image_id, ignore_missing=False),
        )

    def security_group_rule(self, rule_id: str) -> SecurityGroupRule | None:
        rule = _read(
            f"GET security group rule {rule_id}",
            lambda c: c.network.get_security_group_rule(rule_id),
            self.conn,
        )
        return None if rule is None else _rule_model(rule)

    def delete_security_group_rule(self, rule_id: str) -> ActionResult:
        return self._mutate(
            f"DELETE security group rule {rule_id}",
            lambda c: c.network.delete_security_group_rule(rule_id, ignore_missing=False),
        )

    def project_inventory(self, project_id: str) -> dict[str, list[str]]:
        rid = new_request_id()
        try:
            return _inventory(with_request_id(self.conn, rid), project_id)
        except Exception as exc:
            raise _translate(exc, f"inventory of project {project_id}", rid) from exc

    def spared(self, project_id: str, exempt: Exemption) -> Spared:
        rid = new_request_id()
        try:
            return _spared(with_request_id(self.conn, rid), project_id, exempt)
        except Exception as exc:
            raise _translate(exc, f"exempt servers of project {project_id}", rid) from exc

    def _has_role(self, user_id: str, project_id: str) -> bool:
        rows = _listing(
            "GET role assignments",
            lambda c: c.identity.role_assignments(user_id=user_id, scope_project_id=project_id),
            self.conn,
        )
        return bool(rows)

    def _grant(self, user_id: str, project_id: str, grant: bool) -> None:
        rid = new_request_id()
        what = "grant" if grant else "revoke"
        try:
            c = with_request_id(self.conn, rid)
            role = c.identity.find_role(self.cleanup_role, ignore_missing=False)
            if grant:
                c.identity.assign_project_role_to_user(project_id, user_id, role)
            else:
                c.identity.unassign_project_role_from_user(project_id, user_id, role)
        except Exception as exc:
            raise _translate(exc, f"{what} {self.cleanup_role} on {project_id}", rid) from exc

    def cleanup_project(
        self, project_id: str, *, dry_run: bool, exempt: Exemption | None = None
    ) -> CleanupResult:
        """Run ``project_cleanup`` for one project as DESIGN §5 prescribes; raise CloudError
        if it cannot run safely. Waits for every deletion thread before returning.

        Servers ``exempt`` names, and what they use (:class:`Spared`), are kept. What was
        deleted, kept and left is read back from the cloud afterwards."""
        if self.cleanup_connect is None:
            raise CloudError("no connection for project cleanup is configured", transient=False)
        try:
            own = self.conn.current_project_id
        except Exception as exc:
            raise _translate(exc, "own project", "-") from exc
        if project_id == own:
            raise CloudError(
                "refusing to clean up the project reclaim itself works in", transient=False
            )
        say = self.progress or (lambda _line: None)
        say(f"project {project_id}: listing what it owns")
        before = self.project_inventory(project_id)
        known = _ids(before)
        verb = "would delete" if dry_run else "deleting"
        say(f"project {project_id}: {len(known)} resource(s) found, cleaning up")
        spared = self.spared(project_id, exempt) if exempt is not None else Spared()
        granted = False
        if self.cleanup_user_id and not self._has_role(self.cleanup_user_id, project_id):
            if dry_run:
                raise CloudError(
                    "dry run: the cleanup user has no role on the project and a dry run "
                    "grants none",
                    transient=False,
                )
            self._grant(self.cleanup_user_id, project_id, True)
            granted = True
        rid = new_request_id()
        # our own pool: shutting it down waits for every deletion thread, which
        # project_cleanup's wait_timeout does not (it raises while they go on)
        pool = ThreadPoolExecutor(max_workers=5, thread_name_prefix="reclaim-cleanup")
        error: Exception | None = None
        guard: ProjectGuard | None = None
        try:
            conn = self.cleanup_connect(project_id, pool, rid)
            try:
                scope, roles = _token_roles(conn)
            except Exception as exc:
                raise _translate(exc, f"token scoped to {project_id}", rid) from exc
            if scope != project_id:
                raise CloudError(
                    f"cleanup token is scoped to {scope}, not {project_id}", transient=False
                )
            if "admin" in roles:
                raise CloudError(
                    "refusing project cleanup with a token holding the admin role "
                    "(its router step reaches other projects)",
                    transient=False,
                )
            try:
                account = str(conn.object_store.get_endpoint() or "")
            except Exception:
                account = ""
            guard = ProjectGuard(
                project_id, known, account.rstrip("/").endswith(project_id), spared.ids,
                on_accept=lambda obj: say(f"project {project_id}: {verb} {_kind_label(obj)}"),
            )  # fmt: skip
            # every read that can fail comes before the first change; a service the
            # catalog lacks is skipped (and reported), not an error
            swift = _has_service(conn, "object-store")
            had = _containers(conn, project_id, rid) if swift else []
            foreign = _foreign_interfaces(conn, project_id, guard, rid)
            ips = _floating_ips(conn, project_id, guard, rid)
            if not dry_run:
                for router_id, port_id in foreign:
                    _detach(conn, router_id, port_id, rid)
                for ip_id in ips:
                    _delete_ip(conn, ip_id, rid)
            try:
                conn.project_cleanup(
                    dry_run=dry_run,
                    wait_timeout=self.cleanup_timeout,
                    resource_evaluation_fn=guard,
                    skip_resources=["network.floating_ip"],
                )
            except Exception as exc:  # a timeout: the threads go on, we wait below
                error = exc
            finally:
                pool.shutdown(wait=True)
            after = {k: v for k, v in self.project_inventory(project_id).items() if v}
            containers = _containers(conn, project_id, rid) if swift else []
            if containers:
                after["containers"] = containers
            still = _ids(after) | set(containers)
            deleted = {
                kind: gone
                for kind, entries in {**before, "containers": had}.items()
                if (gone := [e for e in entries if _entry_id(e) not in still])
            }
            kept, leftovers = split_spared(after, spared.ids)
            say(
                f"project {project_id}: {sum(map(len, deleted.values()))} deleted, "
                f"{sum(map(len, leftovers.values()))} left"
            )
        finally:
            pool.shutdown(wait=True)
            if granted and self.cleanup_user_id:
                self._grant(self.cleanup_user_id, project_id, False)
        if error is not None and not isinstance(error, CloudError):
            from openstack import exceptions as sdk

            if not isinstance(error, sdk.ResourceTimeout):
                raise _translate(error, f"project cleanup of {project_id}", rid) from error
        assert guard is not None
        return CleanupResult(
            dry_run=dry_run,
            identified=tuple(guard.accepted),
            refused=tuple(guard.refused),
            request_ids=(rid,),
            granted_role=granted,
            leftovers=leftovers,
            error=f"{type(error).__name__}: {error}" if error is not None else "",
            deleted=deleted,
            kept=kept,
            exempt=dict(spared.servers),
            skipped=() if swift else ("object-store",),
            detached=tuple(f"port {p} of router {r}" for r, p in foreign),
        )


class OpenStackCloud(_OpenStackExtras):
    """:class:`CloudPort` on an ``openstack.connection.Connection`` (admin-scoped for reads
    across projects). Each action carries a fresh global request id, recorded in the audit.

    Project cleanup never runs on that connection: ``cleanup_connect(project_id, pool,
    request_id)`` gives a connection scoped to the target project as a user holding no
    admin role (see :func:`cleanup_connector`). When ``cleanup_user_id`` is given and that
    user has no role on the project, the admin connection grants it ``cleanup_role`` for
    the cleanup and revokes it afterwards. ``progress`` hears what a cleanup is doing: one
    line per step and per resource it deletes.
    """

    def __init__(
        self,
        conn: Any,
        *,
        cleanup_connect: Callable[[str, Executor, str], Any] | None = None,
        cleanup_user_id: str | None = None,
        cleanup_role: str = "member",
        cleanup_timeout: float = 3600.0,
        progress: Progress | None = None,
    ) -> None:
        self.conn = conn
        self.progress = progress
        self.cleanup_connect = cleanup_connect
        self.cleanup_user_id = cleanup_user_id
        self.cleanup_role = cleanup_role
        self.cleanup_timeout = cleanup_timeout

    def server(self, server_id: str) -> ServerSnapshot | None:
        """The live server, read as raw JSON through the SDK's session (as the reconcile
        reads its listings): building an SDK ``Server`` costs more CPU than the request."""

        def get(c: Any) -> Any:
            response = c.compute.get(
                f"/servers/{server_id}", microversion=SERVER_MICROVERSION, raise_exc=True
            )
            return response.json()["server"]

        body = _read(f"GET server {server_id}", get, self.conn)
        return None if body is None else snapshot_of(body)

    def _act(self, server_id: str, what: str, call: Any) -> ActionResult:
        from openstack import exceptions as sdk

        rid = new_request_id()
        conn = with_request_id(self.conn, rid)
        try:
            call(conn)
        except sdk.NotFoundException:
            return ActionResult((rid,), gone=True)
        except Exception as exc:
            raise _translate(exc, f"{what} server {server_id}", rid) from exc
        return ActionResult((rid,))

    def shelve_server(self, server_id: str) -> ActionResult:
        return self._act(server_id, "shelve", lambda c: c.compute.shelve_server(server_id))

    def delete_server(self, server_id: str) -> ActionResult:
        return self._act(
            server_id,
            "delete",
            lambda c: c.compute.delete_server(server_id, ignore_missing=False),
        )

    def set_server_metadata(self, server_id: str, key: str, value: str) -> ActionResult:
        """Set one metadata item of the server (an approved exemption's key)."""
        return self._act(
            server_id,
            "set metadata of",
            lambda c: c.compute.set_server_metadata(server_id, **{key: value}),
        )
