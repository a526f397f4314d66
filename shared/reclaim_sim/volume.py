"""Simulated Cinder v3: volumes (attached ones cannot be deleted), snapshots, backups."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from reclaim_sim.clock import iso_micro
from reclaim_sim.core import Ctx, bad_request, new_id, not_found
from reclaim_sim.notify import Notification
from reclaim_sim.wsgi import ServiceAPI, base_url, empty, json_response, read_json

if TYPE_CHECKING:
    from reclaim_sim.cloud import Cloud

MAX_MICROVERSION = "3.71"
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

    def _get(self, table: dict[str, Any], what: str, ctx: Ctx | None, rid: str) -> Any:
        row = table.get(rid)
        if row is None or (
            ctx is not None and not ctx.is_admin and row.project_id != ctx.project_id
        ):
            raise not_found(what, rid)
        return row

    def volume(self, ctx: Ctx | None, vid: str) -> Volume:
        return self._get(self.volumes, "Volume", ctx, vid)  # type: ignore[no-any-return]

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
        return rules

    def handle(self, request: Request, ctx_for: Any) -> tuple[Response, Ctx | None]:
        response, ctx = super().handle(request, ctx_for)
        wanted = request.headers.get("OpenStack-API-Version", "")
        version = wanted.split()[-1] if wanted.lower().startswith("volume") else "3.0"
        response.headers["OpenStack-API-Version"] = f"volume {version}"
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

    def render(self, coll: str, row: Any, detail: bool = True) -> dict[str, Any]:
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
            return dict(
                common,
                user_id=row.user_id,
                bootable=str(row.bootable).lower(),
                metadata=dict(row.metadata),
                availability_zone="nova",
                volume_type="__DEFAULT__",
                multiattach=False,
                encrypted=False,
                snapshot_id=None,
                source_volid=None,
                consistencygroup_id=None,
                replication_status=None,
                group_id=None,
                provider_id=None,
                service_uuid=None,
                shared_targets=False,
                cluster_name=None,
                consumes_quota=True,
                attachments=[
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
                **{
                    "os-vol-tenant-attr:tenant_id": row.project_id,
                    "os-vol-host-attr:host": "sim@lvm#lvm",
                    "os-vol-mig-status-attr:migstat": None,
                    "os-vol-mig-status-attr:name_id": None,
                },
            )
        if coll == "snapshots":
            return dict(
                common,
                volume_id=row.volume_id,
                metadata={},
                user_id=row.user_id,
                group_snapshot_id=None,
                consumes_quota=True,
                progress="100%",
                **{
                    "os-extended-snapshot-attributes:project_id": row.project_id,
                    "os-extended-snapshot-attributes:progress": "100%",
                },
            )
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
            body: dict[str, Any] = {coll: [self.render(coll, r, detail) for r in page]}
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
            return json_response({coll[:-1]: self.render(coll, row)})

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
        with self.cloud.lock:
            return json_response({coll[:-1]: self.render(coll, row)}, 202)

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
