"""What every simulated service shares: the request context, errors, configuration."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

NotificationFormat = Literal["unversioned", "versioned", "both"]
StateChangeNotify = Literal["vm_state", "vm_and_task_state"] | None
KeystoneFormat = Literal["basic", "cadf"]


class SimError(Exception):
    """A failure the API reports with ``status``; ``kind`` names it the way the service does
    (``itemNotFound``, ``conflictingRequest``, ``RouterInUse``...)."""

    def __init__(self, status: int, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind


def not_found(what: str, ident: str) -> SimError:
    return SimError(404, f"{what} {ident} could not be found.", "itemNotFound")


def conflict(message: str, kind: str = "conflictingRequest") -> SimError:
    return SimError(409, message, kind)


def forbidden(message: str = "Policy doesn't allow this operation.") -> SimError:
    return SimError(403, message, "forbidden")


def bad_request(message: str) -> SimError:
    return SimError(400, message, "badRequest")


def new_id() -> str:
    return str(uuid.uuid4())


def new_hex_id() -> str:
    """Keystone's ids: uuid4 hex without dashes."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Ctx:
    """Who is asking: the user, the project the token is scoped to, and the roles held there."""

    user_id: str
    project_id: str | None
    roles: tuple[str, ...] = ()
    user_name: str = ""
    project_name: str = ""
    request_id: str = field(default_factory=lambda: f"req-{uuid.uuid4()}")

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def oslo_context(self) -> dict[str, object]:
        """The context dict a service passes to its notifier (becomes ``_context_*`` keys)."""
        return {
            "user": self.user_id,
            "user_id": self.user_id,
            "user_name": self.user_name,
            "project": self.project_id,
            "project_id": self.project_id,
            "tenant": self.project_id,
            "tenant_id": self.project_id,
            "project_name": self.project_name,
            "tenant_name": self.project_name,
            "roles": list(self.roles),
            "is_admin": self.is_admin,
            "request_id": self.request_id,
            "read_only": False,
            "show_deleted": False,
            "auth_token": None,
        }


@dataclass
class SimConfig:
    """Service settings that change what the simulation does, named as in the real services."""

    region: str = "RegionOne"
    #: Nova ``[DEFAULT] host``; versioned publisher is ``nova-compute:<host>``.
    compute_host: str = "sim-compute"
    #: Nova ``shelved_offload_time``: 0 offloads at once, -1 never, N seconds (sim clock) later.
    shelved_offload_time: int = 0
    #: How long each asynchronous step of a Nova server task takes, in wall-clock seconds
    #: (boot, stop, start, shelve, then offload, delete, snapshot...), when asked for
    #: through the API: the server shows its task state (``powering-off``, ``shelving``,
    #: ``deleting``...) meanwhile, as on a real cloud. 0 (the default): the task is done
    #: before the API answers, which keeps scenarios and the demo deterministic.
    task_seconds: float = 0.0
    #: Nova ``[notifications] notification_format`` (Nova's default: unversioned).
    notification_format: NotificationFormat = "unversioned"
    #: Nova ``[notifications] notify_on_state_change`` (Nova's default: None, no updates).
    notify_on_state_change: StateChangeNotify = None
    #: Keystone ``[DEFAULT] notification_format`` (Keystone's default: cadf).
    keystone_notification_format: KeystoneFormat = "cadf"
    #: Token lifetime; tokens expire on the wall clock, as keystoneauth checks them.
    token_ttl_seconds: int = 24 * 3600
    #: Keystone ``[resource] list_limit`` (or ``[DEFAULT] list_limit``) on ``GET /v3/projects``
    #: (the one listing limited here), as before Keystone 2025.1, which did not page: the
    #: first N projects, and ``"truncated": true`` when there were more (None or 0: no limit).
    keystone_project_list_limit: int | None = None


#: (service type, catalog name, path prefix served, catalog path template)
SERVICES: tuple[tuple[str, str, str, str], ...] = (
    ("identity", "keystone", "/identity", "/identity"),
    ("compute", "nova", "/compute", "/compute/v2.1"),
    ("image", "glance", "/image", "/image"),
    ("block-storage", "cinder", "/volume", "/volume/v3"),
    ("network", "neutron", "/network", "/network"),
    ("object-store", "swift", "/object-store", "/object-store/v1/AUTH_{project_id}"),
)


def catalog(base: str, project_id: str | None, region: str) -> list[dict[str, object]]:
    """The Keystone v3 service catalog for a token scoped to ``project_id``."""
    out: list[dict[str, object]] = []
    for stype, name, _prefix, template in SERVICES:
        if "{project_id}" in template and project_id is None:
            continue
        url = base + template.format(project_id=project_id)
        out.append(
            {
                "id": f"svc-{stype}",
                "type": stype,
                "name": name,
                "endpoints": [
                    {
                        "id": f"ep-{stype}-{iface}",
                        "interface": iface,
                        "region": region,
                        "region_id": region,
                        "url": url,
                    }
                    for iface in ("public", "internal", "admin")
                ],
            }
        )
    return out
