"""What the sweeper needs from the cloud, and its adapter on an openstacksdk Connection."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from reclaim.sweeper.rules import ServerSnapshot


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


class CloudPort(Protocol):
    """Reads and actions on the cloud. Reads return None for a resource that does not exist
    (404) and raise :class:`CloudError` for anything else that is not a full answer."""

    def server(self, server_id: str) -> ServerSnapshot | None: ...

    def shelve_server(self, server_id: str) -> ActionResult: ...

    def delete_server(self, server_id: str) -> ActionResult: ...


def _parse_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def snapshot_of(server: Any) -> ServerSnapshot:
    """A :class:`ServerSnapshot` from an ``openstack.compute.v2.server.Server``."""
    updated = _parse_time(getattr(server, "updated_at", None))
    if updated is not None and updated.tzinfo is None:
        updated = None  # no zone: cannot be compared safely (fail closed)
    metadata = getattr(server, "metadata", None) or {}
    locked = getattr(server, "is_locked", None)
    return ServerSnapshot(
        id=str(server.id),
        status=str(getattr(server, "status", "") or "").upper(),
        project_id=getattr(server, "project_id", None) or None,
        updated_at=updated,
        locked=bool(locked) if locked is not None else None,
        metadata={str(k): str(v) for k, v in dict(metadata).items()},
        vm_state=getattr(server, "vm_state", None) or None,
        task_state=getattr(server, "task_state", None) or None,
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


class OpenStackCloud:
    """:class:`CloudPort` on an ``openstack.connection.Connection`` (admin-scoped for reads
    across projects). Each action carries a fresh global request id, recorded in the audit."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def server(self, server_id: str) -> ServerSnapshot | None:
        from openstack import exceptions as sdk

        rid = new_request_id()
        try:
            server = self.conn.global_request(rid).compute.get_server(server_id)
        except sdk.NotFoundException:
            return None
        except Exception as exc:
            raise _translate(exc, f"GET server {server_id}", rid) from exc
        return snapshot_of(server)

    def _act(self, server_id: str, what: str, call: Any) -> ActionResult:
        from openstack import exceptions as sdk

        rid = new_request_id()
        conn = self.conn.global_request(rid)
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
