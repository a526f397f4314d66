"""Simulated Cinder v3: volumes (attached ones cannot be deleted), snapshots, backups.

As Cinder does: microversions are gated (``OpenStack-API-Version: volume X.Y``, 3.0 when
none is asked, 406 above :data:`MAX_MICROVERSION`), a volume's keys follow the microversion
and the caller's role (host, migration and provider fields for administrators only), a
volume is ``creating``, ``extending`` or ``deleting`` for
:attr:`VolumeState.transition_seconds` (wall clock; ``SimConfig.task_seconds`` unless set, 0
by default: it finishes at once, though the create answer still says ``creating``), and a volume can be renamed, extended and given
metadata."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from reclaim_sim.clock import iso_micro
from reclaim_sim.core import Ctx, SimError, bad_request, new_id, not_found
from reclaim_sim.notify import Notification
from reclaim_sim.wsgi import ServiceAPI, base_url, empty, json_response, read_json

if TYPE_CHECKING:
    from reclaim_sim.cloud import Cloud

MAX_MICROVERSION = "3.71"
MIN_MICROVERSION = "3.0"
#: keys a volume shows from a microversion on (Cinder's volume views)
_SINCE: tuple[tuple[tuple[int, int], str], ...] = (
    ((3, 13), "group_id"),
    ((3, 21), "provider_id"),
    ((3, 48), "service_uuid"),
    ((3, 48), "shared_targets"),
    ((3, 61), "cluster_name"),
    ((3, 63), "volume_type_id"),
    ((3, 65), "consumes_quota"),
)
#: keys Cinder's default policy shows to administrators only
_ADMIN_ONLY = frozenset(
    {
        "migration_status",
        "os-vol-host-attr:host",
        "os-vol-mig-status-attr:migstat",
        "os-vol-mig-status-attr:name_id",
        "provider_id",
        "cluster_name",
    }
)
#: a status that ends by itself (after VolumeState.transition_seconds) and the one it ends in
_SETTLES = {"creating": "available", "extending": "available", "deleting": None}
_IN_USE = (
    "Invalid volume: Volume status must be available or error or error_restoring or "
    "error_extending or error_managing and must not be migrating, attached, belong to "
    "a group, have snapshots, awaiting a transfer, or be disassociated from snapshots "
    "after volume transfer."
)


@dataclass
class Volume:
    id: str
    name: str
    project_id: str
    user_id: str
    size: int
    status: str
    created_at: datetime
    updated_at: datetime
    description: str = ""
    bootable: bool = False
    metadata: dict[str, str] = field(default_factory=dict)
    attached_to: list[str] = field(default_factory=list)
    #: when (time.monotonic) a transitional status ends; the size it then has
    settles_at: float = 0.0
    new_size: int = 0


@dataclass
class Snapshot:
    id: str
    name: str
    volume_id: str
    project_id: str
    user_id: str
    size: int
    created_at: datetime
    updated_at: datetime
    status: str = "available"
    description: str = ""


@dataclass
class Backup:
    id: str
    name: str
    volume_id: str
    project_id: str
    user_id: str
    size: int
    created_at: datetime
    updated_at: datetime
    parent_id: str | None = None
    status: str = "available"
    description: str = ""


class VolumeState:
    """Cinder's volumes, snapshots and backups."""

    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.volumes: dict[str, Volume] = {}
        self.snapshots: dict[str, Snapshot] = {}
        self.backups: dict[str, Backup] = {}
        self._transition_seconds: float | None = None

    @property
    def transition_seconds(self) -> float:
        """How long (wall-clock seconds) a volume stays creating, extending or deleting
        (Cinder's driver at work; clients poll for the end, as openstacksdk's waits do):
        ``SimConfig.task_seconds``, Nova's step, unless set here."""
        if self._transition_seconds is not None:
            return self._transition_seconds
        return self.cloud.config.task_seconds

    @transition_seconds.setter
    def transition_seconds(self, value: float | None) -> None:
        self._transition_seconds = value

    # -- transitions ---------------------------------------------------------------------
    def _start(self, vol: Volume, status: str) -> bool:
        """Put ``vol`` in a transitional ``status`` until it settles; False when transitions
        are instant (the caller finishes the change itself)."""
        if self.transition_seconds <= 0:
            return False
        vol.status = status
        vol.settles_at = time.monotonic() + self.transition_seconds
        vol.updated_at = self.cloud.clock.now()
        return True

    def settle(self) -> None:
        """Finish every transition whose time has come (called before each request)."""
        now = time.monotonic()
        with self.cloud.transaction():
            for vol in list(self.volumes.values()):
                if vol.status in _SETTLES and vol.settles_at <= now:
                    self._finish(vol)

    def _finish(self, vol: Volume) -> None:
        before = vol.status
        if before == "deleting":
            del self.volumes[vol.id]
            vol.status = "deleted"
            self._notify("volume.delete.end", vol, None)
            return
        if before == "extending":
            vol.size = vol.new_size
        vol.status = "available"
        vol.updated_at = self.cloud.clock.now()
        if before == "creating":
            self._notify("volume.create.end", vol, None)

    def _get(self, table: dict[str, Any], what: str, ctx: Ctx | None, rid: str) -> Any:
        row = table.get(rid)
        if row is None or (
            ctx is not None and not ctx.is_admin and row.project_id != ctx.project_id
        ):
            raise not_found(what, rid)
        return row

    def volume(self, ctx: Ctx | None, vid: str) -> Volume:
        return self._get(self.volumes, "Volume", ctx, vid)  # type: ignore[no-any-return]

    def update_volume(
        self,
        ctx: Ctx | None,
        vid: str,
        *,
        name: str | None = None,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Volume:
        """``PUT /volumes/{id}``: a new name, description or metadata (replaced)."""
        with self.cloud.transaction():
            vol = self.volume(ctx, vid)
            if name is not None:
                vol.name = name
            if description is not None:
                vol.description = description
            if metadata is not None:
                vol.metadata = {str(k): str(v) for k, v in metadata.items()}
            vol.updated_at = self.cloud.clock.now()
            return vol

    def set_metadata(
        self, ctx: Ctx | None, vid: str, metadata: dict[str, Any], *, replace: bool = False
    ) -> dict[str, str]:
        """``POST`` (merge) or ``PUT`` (replace) ``/volumes/{id}/metadata``."""
        if not isinstance(metadata, dict):
            raise bad_request("Malformed request body")
        with self.cloud.transaction():
            vol = self.volume(ctx, vid)
            given = {str(k): str(v) for k, v in metadata.items()}
            vol.metadata = given if replace else {**vol.metadata, **given}
            vol.updated_at = self.cloud.clock.now()
            return dict(vol.metadata)

    def delete_metadata_item(self, ctx: Ctx | None, vid: str, key: str) -> None:
        with self.cloud.transaction():
            vol = self.volume(ctx, vid)
            if key not in vol.metadata:
                raise SimError(404, f"Volume {vid} has no metadata with key {key}.", "itemNotFound")
            del vol.metadata[key]
            vol.updated_at = self.cloud.clock.now()

    def extend_volume(self, ctx: Ctx | None, vid: str, new_size: Any) -> None:
        """``os-extend``: only an available volume, only to a larger size."""
        with self.cloud.transaction():
            vol = self.volume(ctx, vid)
            try:
                size = int(new_size)
            except (TypeError, ValueError):
                raise bad_request(f"Invalid input received: new_size {new_size!r}") from None
            if vol.status != "available":
                raise bad_request(
                    f"Invalid volume: Volume {vid} status must be '{{'status': 'available'}}' "
                    f"to extend, currently {vol.status}."
                )
            if size <= vol.size:
                raise bad_request(
                    "Invalid input received: New size for extend must be greater than current "
                    f"size. (current: {vol.size}, extended: {size})."
                )
            vol.new_size = size
            if not self._start(vol, "extending"):
                vol.size = size
                vol.updated_at = self.cloud.clock.now()

    def create_volume(
        self,
        *,
        project_id: str,
        user_id: str,
        name: str,
        size: int = 1,
        description: str = "",
        bootable: bool = False,
        id: str | None = None,
        metadata: dict[str, str] | None = None,
        ctx: Ctx | None = None,
    ) -> Volume:
        with self.cloud.transaction():
            now = self.cloud.clock.now()
            vol = Volume(
                id=id or new_id(),
                name=name,
                project_id=project_id,
                user_id=user_id,
                size=size,
                status="available",
                created_at=now,
                updated_at=now,
                description=description,
                bootable=bootable,
                metadata=dict(metadata or {}),
            )
            self.volumes[vol.id] = vol
            if not self._start(vol, "creating"):
                self._notify("volume.create.end", vol, ctx)
            return vol

    def delete_volume(self, ctx: Ctx | None, vid: str, *, cascade: bool = False) -> None:
        with self.cloud.transaction():
            vol = self.volume(ctx, vid)
            snaps = [s for s in self.snapshots.values() if s.volume_id == vol.id]
            if (
                vol.attached_to
                or vol.status not in ("available", "error")
                or (snaps and not cascade)
            ):
                raise bad_request(_IN_USE)
            for snap in snaps:
                del self.snapshots[snap.id]
            if self._start(vol, "deleting"):
                return
            del self.volumes[vol.id]
            vol.status = "deleted"
            self._notify("volume.delete.end", vol, ctx)

    def attach(self, vid: str, server_id: str) -> None:
        with self.cloud.transaction():
            vol = self.volumes.get(vid)
            if vol is None:
                raise bad_request(f"Volume {vid} could not be found.")
            if vol.attached_to:
                raise bad_request(f"Invalid volume: volume {vid} already attached")
            vol.attached_to.append(server_id)
            vol.status = "in-use"
            vol.updated_at = self.cloud.clock.now()

    def detach(self, vid: str, server_id: str) -> None:
        with self.cloud.transaction():
            vol = self.volumes.get(vid)
            if vol is not None and server_id in vol.attached_to:
                vol.attached_to.remove(server_id)
                vol.status = "in-use" if vol.attached_to else "available"
                vol.updated_at = self.cloud.clock.now()

    def create_snapshot(
        self, ctx: Ctx, volume_id: str, *, name: str = "", force: bool = False
    ) -> Snapshot:
        with self.cloud.transaction():
            vol = self.volume(ctx, volume_id)
            if vol.status == "in-use" and not force:
                raise bad_request(
                    "Invalid volume: Volume in-use cannot be snapshotted without force."
                )
            now = self.cloud.clock.now()
            snap = Snapshot(
                id=new_id(),
                name=name,
                volume_id=vol.id,
                project_id=vol.project_id,
                user_id=ctx.user_id,
                size=vol.size,
                created_at=now,
                updated_at=now,
            )
            self.snapshots[snap.id] = snap
            return snap

    def delete_snapshot(self, ctx: Ctx, sid: str) -> None:
        with self.cloud.transaction():
            snap = self._get(self.snapshots, "Snapshot", ctx, sid)
            del self.snapshots[snap.id]

    def create_backup(
        self,
        ctx: Ctx,
        volume_id: str,
        *,
        name: str = "",
        incremental: bool = False,
        force: bool = False,
    ) -> Backup:
        with self.cloud.transaction():
            vol = self.volume(ctx, volume_id)
            if vol.status == "in-use" and not force:
                raise bad_request(
                    "Invalid volume: Backing up an in-use volume must use the force flag."
                )
            parent = None
            if incremental:
                older = [b for b in self.backups.values() if b.volume_id == vol.id]
                if not older:
                    raise bad_request(
                        "Invalid backup: No backups available to do an incremental backup."
                    )
                parent = max(older, key=lambda b: b.created_at).id
            now = self.cloud.clock.now()
            backup = Backup(
                id=new_id(),
                name=name,
                volume_id=vol.id,
                project_id=vol.project_id,
                user_id=ctx.user_id,
                size=vol.size,
                created_at=now,
                updated_at=now,
                parent_id=parent,
            )
            self.backups[backup.id] = backup
            return backup

    def has_dependents(self, backup: Backup) -> bool:
        return any(b.parent_id == backup.id for b in self.backups.values())

    def delete_backup(self, ctx: Ctx, bid: str) -> None:
        with self.cloud.transaction():
            backup = self._get(self.backups, "Backup", ctx, bid)
            if self.has_dependents(backup):
                raise bad_request("Invalid backup: Incremental backups exist for this backup.")
            del self.backups[backup.id]

    def _notify(self, event_type: str, vol: Volume, ctx: Ctx | None) -> None:
        cloud = self.cloud
        if not cloud.notifying:
            return
        cloud.notify(
            Notification(
                exchange="cinder",
                topic="notifications",
                publisher_id="volume.sim-volume",
                event_type=event_type,
                timestamp=cloud.clock.now(),
                context=ctx.oslo_context() if ctx else {},
                payload={
                    "tenant_id": vol.project_id,
                    "user_id": vol.user_id,
                    "volume_id": vol.id,
                    "display_name": vol.name,
                    "size": vol.size,
                    "status": vol.status,
                    "availability_zone": "nova",
                    "volume_type": "__DEFAULT__",
                    "created_at": str(vol.created_at.replace(tzinfo=None)),
                    "metadata": [{"key": k, "value": v} for k, v in vol.metadata.items()],
                    "volume_attachment": [],
                    "replication_status": None,
                },
            )
        )


def _mv(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


def microversion(request: Request) -> tuple[int, int]:
    """The volume microversion a request asks for, as Cinder reads it: 3.0 when it asks
    none, the highest for ``latest``; 400 for a malformed one, 406 outside 3.0 to the max."""
    value = None
    for part in request.headers.get("OpenStack-API-Version", "").split(","):
        words = part.strip().split()
        if len(words) == 2 and words[0].lower() == "volume":
            value = words[1]
    if value is None:
        return _mv(MIN_MICROVERSION)
    if value.lower() == "latest":
        return _mv(MAX_MICROVERSION)
    try:
        wanted = _mv(value)
    except ValueError:
        raise bad_request(
            f"API Version String {value} is of invalid format. Must be of format MajorNum.MinorNum."
        ) from None
    if not _mv(MIN_MICROVERSION) <= wanted <= _mv(MAX_MICROVERSION):
        raise SimError(
            406,
            f"Version {value} is not supported by the API. Minimum is {MIN_MICROVERSION} "
            f"and maximum is {MAX_MICROVERSION}.",
            "computeFault",
        )
    return wanted


class VolumeAPI(ServiceAPI):
    name = "block-storage"
    prefix = "/volume"
    public_endpoints = frozenset({"versions", "version"})

    @property
    def state(self) -> VolumeState:
        return self.cloud.volume

    def rules(self) -> list[Rule]:
        rules = [
            Rule("/", endpoint="versions", methods=["GET"]),
            Rule("/v3", endpoint="version", methods=["GET"]),
        ]
        # with and without the project id in the path, as Cinder accepts both
        for root in ("/v3", "/v3/<project>"):
            for coll in ("volumes", "snapshots", "backups"):
                d = {"coll": coll}
                rules += [
                    Rule(
                        f"{root}/{coll}",
                        endpoint="list_rows",
                        methods=["GET"],
                        defaults=dict(d, detail=False),
                    ),
                    Rule(
                        f"{root}/{coll}/detail",
                        endpoint="list_rows",
                        methods=["GET"],
                        defaults=dict(d, detail=True),
                    ),
                    Rule(f"{root}/{coll}", endpoint="create_row", methods=["POST"], defaults=d),
                    Rule(f"{root}/{coll}/<rid>", endpoint="get_row", methods=["GET"], defaults=d),
                    Rule(
                        f"{root}/{coll}/<rid>",
                        endpoint="delete_row",
                        methods=["DELETE"],
                        defaults=d,
                    ),
                ]
            v = f"{root}/volumes/<rid>"
            rules += [
                Rule(v, endpoint="update_volume", methods=["PUT"]),
                Rule(f"{v}/action", endpoint="volume_action", methods=["POST"]),
                Rule(f"{v}/metadata", endpoint="get_metadata", methods=["GET"]),
                Rule(f"{v}/metadata", endpoint="merge_metadata", methods=["POST"]),
                Rule(f"{v}/metadata", endpoint="replace_metadata", methods=["PUT"]),
                Rule(f"{v}/metadata/<key>", endpoint="get_meta_item", methods=["GET"]),
                Rule(f"{v}/metadata/<key>", endpoint="set_meta_item", methods=["PUT"]),
                Rule(f"{v}/metadata/<key>", endpoint="delete_meta_item", methods=["DELETE"]),
            ]
        return rules

    def handle(self, request: Request, ctx_for: Any) -> tuple[Response, Ctx | None]:
        try:
            mv = microversion(request)
        except SimError as err:
            response, ctx = self.error(err), None
        else:
            request.environ["sim.volume_microversion"] = mv
            self.state.settle()
            response, ctx = super().handle(request, ctx_for)
        if "sim.volume_microversion" in request.environ:
            response.headers["OpenStack-API-Version"] = "volume {}.{}".format(*mv)
        else:  # refused: the answer names the version asked, as Cinder's does
            asked = request.headers.get("OpenStack-API-Version", "").split()[-1:]
            response.headers["OpenStack-API-Version"] = f"volume {''.join(asked)}"
        response.headers["Vary"] = "OpenStack-API-Version"
        return response, ctx

    def _version(self, base: str) -> dict[str, Any]:
        return {
            "id": "v3.0",
            "status": "CURRENT",
            "version": MAX_MICROVERSION,
            "min_version": "3.0",
            "updated": "2023-08-31T00:00:00Z",
            "links": [{"rel": "self", "href": f"{base}/volume/v3/"}],
            "media-types": [
                {
                    "base": "application/json",
                    "type": "application/vnd.openstack.volume+json;version=3",
                }
            ],
        }

    def versions(self, request: Request, ctx: Ctx | None) -> Response:
        return json_response({"versions": [self._version(base_url(request))]}, 300)

    def version(self, request: Request, ctx: Ctx | None) -> Response:
        return json_response({"versions": [self._version(base_url(request))]})

    def render(
        self,
        coll: str,
        row: Any,
        detail: bool = True,
        ctx: Ctx | None = None,
        mv: tuple[int, int] = (3, 0),
    ) -> dict[str, Any]:
        """A row as Cinder shows it to ``ctx`` (None: an administrator) at microversion
        ``mv``."""
        if not detail:
            return {"id": row.id, "name": row.name, "links": []}
        common = {
            "id": row.id,
            "name": row.name,
            "status": row.status,
            "description": row.description,
            "size": row.size,
            "created_at": iso_micro(row.created_at),
            "updated_at": iso_micro(row.updated_at),
            "links": [],
        }
        if coll == "volumes":
            return self._volume(row, ctx, mv)
        if coll == "snapshots":
            return self._snapshot(row, mv)
        return dict(
            common,
            volume_id=row.volume_id,
            availability_zone="nova",
            container="backups",
            object_count=1,
            fail_reason=None,
            is_incremental=row.parent_id is not None,
            has_dependent_backups=self.state.has_dependents(row),
            snapshot_id=None,
            data_timestamp=iso_micro(row.created_at),
            user_id=row.user_id,
            metadata={},
            encryption_key_id=None,
            **{"os-backup-project-attr:project_id": row.project_id},
        )

    @staticmethod
    def _snapshot(row: Snapshot, mv: tuple[int, int], *, bare: bool = False) -> dict[str, Any]:
        """Cinder's snapshot view: the 3.0 keys, the project and progress (not in the create
        answer, ``bare``), and the keys of later microversions."""
        out: dict[str, Any] = {
            "id": row.id,
            "created_at": iso_micro(row.created_at),
            "updated_at": iso_micro(row.updated_at),
            "name": row.name,
            "description": row.description,
            "volume_id": row.volume_id,
            "status": "creating" if bare else row.status,
            "size": row.size,
            "metadata": {},
        }
        if not bare:
            out["os-extended-snapshot-attributes:project_id"] = row.project_id
            out["os-extended-snapshot-attributes:progress"] = "100%"
        later = {"group_snapshot_id": None, "user_id": row.user_id, "consumes_quota": True}
        since = (((3, 14), "group_snapshot_id"), ((3, 41), "user_id"), ((3, 65), "consumes_quota"))
        out.update({key: later[key] for at, key in since if mv >= at})
        return out

    def _volume(
        self,
        row: Volume,
        ctx: Ctx | None,
        mv: tuple[int, int],
        *,
        bare: bool = False,
        status: str | None = None,
    ) -> dict[str, Any]:
        """Cinder's volume view: the 3.0 keys; the tenant, host and migration fields (not in
        the answers to a create or an update, ``bare``); the keys of later microversions;
        the administrators' fields dropped for anyone else."""
        out: dict[str, Any] = {
            "id": row.id,
            "status": status or row.status,
            "size": row.size,
            "availability_zone": "nova",
            "created_at": iso_micro(row.created_at),
            "updated_at": iso_micro(row.updated_at),
            "name": row.name,
            "description": row.description,
            "volume_type": "__DEFAULT__",
            "snapshot_id": None,
            "source_volid": None,
            "metadata": dict(row.metadata),
            "links": [],
            "user_id": row.user_id,
            "bootable": str(row.bootable).lower(),
            "encrypted": False,
            "replication_status": None,
            "consistencygroup_id": None,
            "multiattach": False,
            "attachments": [
                {
                    "server_id": s,
                    "attachment_id": f"att-{s[:8]}",
                    "volume_id": row.id,
                    "id": row.id,
                    "device": "/dev/vdb",
                    "host_name": None,
                    "attached_at": iso_micro(row.updated_at),
                }
                for s in row.attached_to
            ],
        }
        if not bare:
            out.update(
                {
                    "migration_status": None,
                    "os-vol-tenant-attr:tenant_id": row.project_id,
                    "os-vol-mig-status-attr:migstat": None,
                    "os-vol-mig-status-attr:name_id": None,
                    "os-vol-host-attr:host": "sim@lvm#lvm",
                }
            )
        later = {
            "group_id": None,
            "provider_id": None,
            "service_uuid": "sim-volume-service",
            "shared_targets": False,
            "cluster_name": None,
            "volume_type_id": "sim-default-volume-type",
            "consumes_quota": True,
        }
        out.update({key: later[key] for since, key in _SINCE if mv >= since})
        if ctx is not None and not ctx.is_admin:
            out = {k: v for k, v in out.items() if k not in _ADMIN_ONLY}
        return out

    def _table(self, coll: str) -> dict[str, Any]:
        return {
            "volumes": self.state.volumes,
            "snapshots": self.state.snapshots,
            "backups": self.state.backups,
        }[coll]  # type: ignore[return-value]

    def list_rows(
        self, request: Request, ctx: Ctx | None, coll: str, detail: bool, project: str | None = None
    ) -> Response:
        assert ctx is not None
        args = request.args
        all_tenants = ctx.is_admin and args.get("all_tenants", "0") not in ("0", "false", "")
        wanted = args.get("project_id") if all_tenants else ctx.project_id
        status, name = args.get("status"), args.get("name")
        with self.cloud.lock:
            rows = [
                r
                for r in self._table(coll).values()
                if (wanted is None or r.project_id == wanted)
                and (status is None or r.status == status)
                and (name is None or r.name == name)
            ]
            sort_key = args.get("sort_key", "created_at").split(":")[0]
            if sort_key not in ("created_at", "updated_at", "name", "id", "size", "status"):
                sort_key = "created_at"
            reverse = args.get("sort_dir", "desc") != "asc"
            rows.sort(key=lambda r: (getattr(r, sort_key), r.id), reverse=reverse)
            marker = args.get("marker")
            if marker:
                idx = next((i for i, r in enumerate(rows) if r.id == marker), None)
                if idx is None:
                    raise not_found("Marker", marker)
                rows = rows[idx + 1 :]
            limit = int(args["limit"]) if "limit" in args else None
            page = rows if limit is None else rows[:limit]
            mv = request.environ["sim.volume_microversion"]
            body: dict[str, Any] = {coll: [self.render(coll, r, detail, ctx, mv) for r in page]}
        if limit is not None and len(rows) > limit and page:
            body[f"{coll}_links"] = [
                {
                    "rel": "next",
                    "href": (
                        f"{base_url(request)}{request.path}?limit={limit}&marker={page[-1].id}"
                    ),
                }
            ]
        return json_response(body)

    def get_row(
        self, request: Request, ctx: Ctx | None, coll: str, rid: str, project: str | None = None
    ) -> Response:
        what = {"volumes": "Volume", "snapshots": "Snapshot", "backups": "Backup"}[coll]
        with self.cloud.lock:
            row = self.state._get(self._table(coll), what, ctx, rid)
            mv = request.environ["sim.volume_microversion"]
            return json_response({coll[:-1]: self.render(coll, row, True, ctx, mv)})

    def create_row(
        self, request: Request, ctx: Ctx | None, coll: str, project: str | None = None
    ) -> Response:
        assert ctx is not None and ctx.project_id is not None
        spec = read_json(request).get(coll[:-1]) or {}
        row: Any
        if coll == "volumes":
            row = self.state.create_volume(
                project_id=ctx.project_id,
                user_id=ctx.user_id,
                name=spec.get("name") or "",
                size=int(spec.get("size") or 1),
                description=spec.get("description") or "",
                metadata=spec.get("metadata"),
                ctx=ctx,
            )
        elif coll == "snapshots":
            row = self.state.create_snapshot(
                ctx,
                spec.get("volume_id", ""),
                name=spec.get("name") or "",
                force=bool(spec.get("force")),
            )
        else:
            row = self.state.create_backup(
                ctx,
                spec.get("volume_id", ""),
                name=spec.get("name") or "",
                incremental=bool(spec.get("incremental")),
                force=bool(spec.get("force")),
            )
        mv = request.environ["sim.volume_microversion"]
        with self.cloud.lock:
            if coll == "volumes":  # Cinder answers before its driver has made the volume
                answer = self._volume(row, ctx, mv, bare=True, status="creating")
                return json_response({"volume": answer}, 202)
            if coll == "snapshots":
                return json_response({"snapshot": self._snapshot(row, mv, bare=True)}, 202)
            return json_response({coll[:-1]: self.render(coll, row, True, ctx, mv)}, 202)

    def delete_row(
        self, request: Request, ctx: Ctx | None, coll: str, rid: str, project: str | None = None
    ) -> Response:
        assert ctx is not None
        if coll == "volumes":
            self.state.delete_volume(ctx, rid, cascade=request.args.get("cascade") == "true")
        elif coll == "snapshots":
            self.state.delete_snapshot(ctx, rid)
        else:
            self.state.delete_backup(ctx, rid)
        return empty(202)

    # -- a volume's update, actions and metadata --------------------------------------------
    def update_volume(
        self, request: Request, ctx: Ctx | None, rid: str, project: str | None = None
    ) -> Response:
        spec = read_json(request).get("volume")
        if not isinstance(spec, dict):
            raise bad_request("Missing required element 'volume' in request body.")
        vol = self.state.update_volume(
            ctx,
            rid,
            name=spec.get("name", spec.get("display_name")),
            description=spec.get("description", spec.get("display_description")),
            metadata=spec.get("metadata"),
        )
        mv = request.environ["sim.volume_microversion"]
        with self.cloud.lock:
            return json_response({"volume": self._volume(vol, ctx, mv, bare=True)})

    def volume_action(
        self, request: Request, ctx: Ctx | None, rid: str, project: str | None = None
    ) -> Response:
        assert ctx is not None
        body = read_json(request)
        action = next(iter(body), "") if isinstance(body, dict) and len(body) == 1 else ""
        if action == "os-extend":
            self.state.extend_volume(ctx, rid, (body[action] or {}).get("new_size"))
            return empty(202)
        if action == "os-set_bootable":
            flag = str((body[action] or {}).get("bootable", "")).lower()
            with self.cloud.transaction():
                self.state.volume(ctx, rid).bootable = flag in ("true", "1", "yes", "on")
            return empty(200)
        raise bad_request(
            f"There is no such action: {action or body}. Verify the request body and "
            "Content-Type header and try again."
        )

    def get_metadata(
        self, request: Request, ctx: Ctx | None, rid: str, project: str | None = None
    ) -> Response:
        with self.cloud.lock:
            return json_response({"metadata": dict(self.state.volume(ctx, rid).metadata)})

    def merge_metadata(
        self, request: Request, ctx: Ctx | None, rid: str, project: str | None = None
    ) -> Response:
        given = read_json(request).get("metadata")
        return json_response({"metadata": self.state.set_metadata(ctx, rid, given)})

    def replace_metadata(
        self, request: Request, ctx: Ctx | None, rid: str, project: str | None = None
    ) -> Response:
        given = read_json(request).get("metadata")
        return json_response({"metadata": self.state.set_metadata(ctx, rid, given, replace=True)})

    def get_meta_item(
        self, request: Request, ctx: Ctx | None, rid: str, key: str, project: str | None = None
    ) -> Response:
        with self.cloud.lock:
            metadata = self.state.volume(ctx, rid).metadata
            if key not in metadata:
                raise SimError(404, f"Volume {rid} has no metadata with key {key}.", "itemNotFound")
            return json_response({"meta": {key: metadata[key]}})

    def set_meta_item(
        self, request: Request, ctx: Ctx | None, rid: str, key: str, project: str | None = None
    ) -> Response:
        meta = read_json(request).get("meta")
        if not isinstance(meta, dict) or list(meta) != [key]:
            raise bad_request("Request body and URI mismatch")
        self.state.set_metadata(ctx, rid, meta)
        return json_response({"meta": {key: str(meta[key])}})

    def delete_meta_item(
        self, request: Request, ctx: Ctx | None, rid: str, key: str, project: str | None = None
    ) -> Response:
        self.state.delete_metadata_item(ctx, rid, key)
        return empty(200)
