"""Simulated Glance v2: images, visibility, protection, hiding, members, notifications."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from reclaim.models.glance import GLANCE_CORE_FIELDS
from reclaim_sim.clock import iso_z
from reclaim_sim.core import Ctx, SimError, new_id
from reclaim_sim.notify import Notification
from reclaim_sim.wsgi import ServiceAPI, base_url, empty, json_response, query_flag, read_json

if TYPE_CHECKING:
    from reclaim_sim.cloud import Cloud

VISIBILITIES = ("private", "shared", "community", "public")

_READ_ONLY = frozenset(
    {
        "id",
        "status",
        "owner",
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "size",
        "virtual_size",
        "created_at",
        "updated_at",
        "self",
        "file",
        "schema",
        "locations",
        "direct_url",
        "stores",
    }
)


@dataclass
class Member:
    member_id: str
    status: str  # pending | accepted | rejected
    created_at: datetime
    updated_at: datetime


@dataclass
class Image:
    id: str
    name: str | None
    owner: str | None
    visibility: str
    status: str
    created_at: datetime
    updated_at: datetime
    protected: bool = False
    os_hidden: bool = False
    properties: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    members: dict[str, Member] = field(default_factory=dict)
    size: int | None = None
    checksum: str | None = None
    disk_format: str | None = "qcow2"
    container_format: str | None = "bare"
    min_disk: int = 0
    min_ram: int = 0

    def to_api(self, base: str = "") -> dict[str, Any]:
        body: dict[str, Any] = dict(self.properties)
        body.update(
            {
                "id": self.id,
                "name": self.name,
                "status": self.status,
                "visibility": self.visibility,
                "protected": self.protected,
                "os_hidden": self.os_hidden,
                "owner": self.owner,
                "checksum": self.checksum,
                "os_hash_algo": "sha512" if self.checksum else None,
                "os_hash_value": self.checksum
                and hashlib.sha512(self.checksum.encode()).hexdigest(),
                "min_disk": self.min_disk,
                "min_ram": self.min_ram,
                "size": self.size,
                "virtual_size": None,
                "container_format": self.container_format,
                "disk_format": self.disk_format,
                "created_at": iso_z(self.created_at),
                "updated_at": iso_z(self.updated_at),
                "tags": list(self.tags),
                "self": f"/v2/images/{self.id}",
                "file": f"/v2/images/{self.id}/file",
                "schema": "/v2/schemas/image",
            }
        )
        return body


class ImageState:
    """Glance's images and the rules on who may see, change and delete them."""

    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.images: dict[str, Image] = {}
        self.data: dict[str, bytes] = {}

    def visible(self, ctx: Ctx | None, image: Image) -> bool:
        if ctx is None or ctx.is_admin:
            return True
        if image.owner == ctx.project_id or image.visibility in ("public", "community"):
            return True
        return image.visibility == "shared" and ctx.project_id in image.members

    def get(self, ctx: Ctx | None, image_id: str) -> Image:
        image = self.images.get(image_id)
        if image is None or not self.visible(ctx, image):
            raise SimError(404, f"No image found with ID {image_id}", "NotFound")
        return image

    def _check_owner(self, ctx: Ctx | None, image: Image) -> None:
        if ctx is not None and not ctx.is_admin and image.owner != ctx.project_id:
            raise SimError(403, "You are not permitted to modify this image.", "Forbidden")

    # -- changes ---------------------------------------------------------------------------
    def create_image(
        self,
        *,
        owner: str | None,
        name: str | None,
        visibility: str = "shared",
        protected: bool = False,
        os_hidden: bool = False,
        properties: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        status: str = "queued",
        id: str | None = None,
        disk_format: str | None = None,
        container_format: str | None = None,
        created_at: datetime | None = None,
        ctx: Ctx | None = None,
    ) -> Image:
        if visibility not in VISIBILITIES:
            raise SimError(400, f"Invalid visibility value: {visibility}", "BadRequest")
        cloud = self.cloud
        with cloud.transaction():
            if id and id in self.images:
                raise SimError(409, f"Image with identifier {id} already exists!", "Conflict")
            now = created_at or cloud.clock.now()
            image = Image(
                id=id or new_id(),
                name=name,
                owner=owner,
                visibility=visibility,
                status=status,
                created_at=now,
                updated_at=now,
                protected=protected,
                os_hidden=os_hidden,
                properties=dict(properties or {}),
                tags=list(tags or []),
                disk_format=disk_format,
                container_format=container_format,
            )
            if status == "active":
                image.size = 1024
                image.checksum = hashlib.md5(image.id.encode()).hexdigest()
                image.disk_format = image.disk_format or "qcow2"
                image.container_format = image.container_format or "bare"
            self.images[image.id] = image
            self._notify("image.create", self._payload(image), ctx)
            return image

    def update(
        self,
        ctx: Ctx | None,
        image_id: str,
        changes: dict[str, Any],
        removed: list[str] | None = None,
    ) -> Image:
        cloud = self.cloud
        with cloud.transaction():
            image = self.get(ctx, image_id)
            self._check_owner(ctx, image)
            for key, value in changes.items():
                if key in _READ_ONLY:
                    raise SimError(403, f"Attribute '{key}' is read-only.", "Forbidden")
                if key == "visibility":
                    if value not in VISIBILITIES:
                        raise SimError(400, f"Invalid visibility value: {value}", "BadRequest")
                    if value == "public" and ctx is not None and not ctx.is_admin:
                        raise SimError(403, "Forbidden to publicize image.", "Forbidden")
                    image.visibility = value
                elif key in ("protected", "os_hidden"):
                    setattr(image, key, bool(value))
                elif key in ("name", "disk_format", "container_format", "min_disk", "min_ram"):
                    setattr(image, key, value)
                elif key == "tags":
                    image.tags = list(value)
                else:
                    image.properties[key] = value
            for key in removed or []:
                if key not in image.properties:
                    raise SimError(409, f"Property {key} does not exist.", "Conflict")
                del image.properties[key]
            image.updated_at = cloud.clock.now()
            self._notify("image.update", self._payload(image), ctx)
            return image

    def delete(self, ctx: Ctx | None, image_id: str) -> None:
        """Delete; 403 when protected or not the owner's (admins may delete any)."""
        cloud = self.cloud
        with cloud.transaction():
            image = self.get(ctx, image_id)
            self._check_owner(ctx, image)
            if image.protected:
                raise SimError(
                    403, f"Image {image.id} is protected and cannot be deleted.", "Forbidden"
                )
            self._remove(image, ctx)

    def delete_quietly(self, image_id: str) -> None:
        """Delete as a service would (Nova removing a shelve snapshot); missing is fine."""
        with self.cloud.transaction():
            image = self.images.get(image_id)
            if image is not None:
                self._remove(image, None)

    def _remove(self, image: Image, ctx: Ctx | None) -> None:
        del self.images[image.id]
        self.data.pop(image.id, None)
        now = self.cloud.clock.now()
        image.status = "deleted"
        image.updated_at = now
        payload = self._payload(image)
        payload.update(deleted=True, deleted_at=iso_z(now))
        self._notify("image.delete", payload, ctx)

    def upload(self, ctx: Ctx | None, image_id: str, data: bytes) -> Image:
        with self.cloud.transaction():
            image = self.get(ctx, image_id)
            self._check_owner(ctx, image)
            if image.status not in ("queued", "saving"):
                raise SimError(
                    409, "Image status transition from active to saving is not allowed", "Conflict"
                )
            self.data[image.id] = data
            image.size = len(data)
            image.checksum = hashlib.md5(data).hexdigest()
            image.status = "active"
            image.updated_at = self.cloud.clock.now()
            self._notify("image.upload", self._payload(image), ctx)
            self._notify("image.activate", self._payload(image), ctx)
            return image

    def set_active(self, ctx: Ctx | None, image_id: str, *, active: bool) -> Image:
        """Deactivate (``active`` False) or reactivate an image: admins only (Glance's
        default policy), and only between ``active`` and ``deactivated``."""
        verb = "reactivate" if active else "deactivate"
        with self.cloud.transaction():
            image = self.get(ctx, image_id)
            if ctx is not None and not ctx.is_admin:
                raise SimError(403, f"You are not authorized to {verb} this image.", "Forbidden")
            if image.status not in ("active", "deactivated"):
                raise SimError(
                    403, f"Not allowed to {verb} image in status '{image.status}'", "Forbidden"
                )
            wanted = "active" if active else "deactivated"
            if image.status != wanted:
                image.status = wanted
                image.updated_at = self.cloud.clock.now()
                self._notify("image.update", self._payload(image), ctx)
            return image

    def tag(self, ctx: Ctx | None, image_id: str, tag: str, *, add: bool) -> Image:
        """Add or remove one tag (the owner or an admin); removing a missing tag is a 404."""
        with self.cloud.transaction():
            image = self.get(ctx, image_id)
            self._check_owner(ctx, image)
            if add and tag not in image.tags:
                image.tags.append(tag)
            elif not add:
                if tag not in image.tags:
                    raise SimError(404, f"Tag {tag} not found", "NotFound")
                image.tags.remove(tag)
            image.updated_at = self.cloud.clock.now()
            self._notify("image.update", self._payload(image), ctx)
            return image

    # -- members ---------------------------------------------------------------------------
    def add_member(self, ctx: Ctx | None, image_id: str, member_id: str) -> Member:
        with self.cloud.transaction():
            image = self.get(ctx, image_id)
            self._check_owner(ctx, image)
            if image.visibility != "shared":
                raise SimError(403, "Only shared images have members.", "Forbidden")
            if member_id in image.members:
                raise SimError(
                    409, f"Member {member_id} already associated with image {image.id}.", "Conflict"
                )
            now = self.cloud.clock.now()
            member = Member(member_id, "pending", now, now)
            image.members[member_id] = member
            self._member_notify("image.member.create", image, member, ctx)
            return member

    def set_member_status(
        self, ctx: Ctx | None, image_id: str, member_id: str, status: str
    ) -> Member:
        if status not in ("pending", "accepted", "rejected"):
            raise SimError(400, f"Invalid status: {status}", "BadRequest")
        with self.cloud.transaction():
            image = self.get(ctx, image_id)
            member = image.members.get(member_id)
            if member is None:
                raise SimError(404, f"Member {member_id} not found", "NotFound")
            if ctx is not None and not ctx.is_admin and ctx.project_id != member_id:
                raise SimError(
                    403,
                    "You are not permitted to modify 'status' on this image member.",
                    "Forbidden",
                )
            member.status = status
            member.updated_at = self.cloud.clock.now()
            self._member_notify("image.member.update", image, member, ctx)
            return member

    def remove_member(self, ctx: Ctx | None, image_id: str, member_id: str) -> None:
        with self.cloud.transaction():
            image = self.get(ctx, image_id)
            self._check_owner(ctx, image)
            member = image.members.pop(member_id, None)
            if member is None:
                raise SimError(404, f"Member {member_id} not found", "NotFound")
            self._member_notify("image.member.delete", image, member, ctx, deleted=True)

    # -- listing ---------------------------------------------------------------------------
    def listed(self, ctx: Ctx, args: dict[str, str]) -> list[Image]:
        """The images Glance's ``GET /v2/images`` returns for ``args``, in its order."""
        visibility = args.get("visibility")
        owner = args.get("owner")
        hidden = query_flag(args.get("os_hidden"))
        hidden = False if hidden is None else hidden
        member_status = args.get("member_status", "accepted")
        name, status = args.get("name"), args.get("status")
        tag = args.get("tag")
        prop_filters = {
            k: v
            for k, v in args.items()
            if k not in GLANCE_CORE_FIELDS
            and k
            not in (
                "limit",
                "marker",
                "sort_key",
                "sort_dir",
                "sort",
                "member_status",
                "visibility",
            )
        }
        out = []
        for image in self.images.values():
            if not ctx.is_admin:
                mine = image.owner == ctx.project_id
                member = image.members.get(ctx.project_id or "")
                if not (
                    mine
                    or image.visibility in ("public", "community")
                    or (
                        image.visibility == "shared"
                        and member is not None
                        and (member_status == "all" or member.status == member_status)
                    )
                ):
                    continue
            if visibility is not None:
                if visibility != "all" and image.visibility != visibility:
                    continue
            elif image.visibility == "community" and image.owner != ctx.project_id:
                # without a visibility filter, community images show only to their owner
                continue
            if image.os_hidden != hidden:
                continue
            if owner is not None and image.owner != owner:
                continue
            if name is not None and image.name != name:
                continue
            if status is not None and image.status != status:
                continue
            if tag is not None and tag not in image.tags:
                continue
            if any(str(image.properties.get(k)) != v for k, v in prop_filters.items()):
                continue
            out.append(image)
        sort_key = args.get("sort_key", "created_at")
        reverse = args.get("sort_dir", "desc") == "desc"
        out.sort(
            key=lambda i: (
                str(getattr(i, sort_key, None) or i.properties.get(sort_key) or ""),
                i.id,
            ),
            reverse=reverse,
        )
        return out

    # -- notifications ---------------------------------------------------------------------
    def _payload(self, image: Image) -> dict[str, Any]:
        return {
            "id": image.id,
            "name": image.name,
            "owner": image.owner,
            "visibility": image.visibility,
            "status": image.status,
            "protected": image.protected,
            "os_hidden": image.os_hidden,
            "properties": dict(image.properties),
            "tags": list(image.tags),
            "checksum": image.checksum,
            "size": image.size,
            "virtual_size": None,
            "min_disk": image.min_disk,
            "min_ram": image.min_ram,
            "disk_format": image.disk_format,
            "container_format": image.container_format,
            "created_at": iso_z(image.created_at),
            "updated_at": iso_z(image.updated_at),
            "deleted": False,
            "deleted_at": None,
            "is_public": image.visibility == "public",
        }

    def _member_notify(
        self,
        event_type: str,
        image: Image,
        member: Member,
        ctx: Ctx | None,
        *,
        deleted: bool = False,
    ) -> None:
        now = self.cloud.clock.now()
        self._notify(
            event_type,
            {
                "image_id": image.id,
                "member_id": member.member_id,
                "status": member.status,
                "created_at": iso_z(member.created_at),
                "updated_at": iso_z(member.updated_at),
                "deleted": deleted,
                "deleted_at": iso_z(now) if deleted else None,
            },
            ctx,
        )

    def _notify(self, event_type: str, payload: dict[str, Any], ctx: Ctx | None) -> None:
        cloud = self.cloud
        if not cloud.notifying:
            return
        cloud.notify(
            Notification(
                exchange="glance",
                topic="notifications",
                publisher_id="image.localhost",
                event_type=event_type,
                payload=payload,
                timestamp=cloud.clock.now(),
                context=ctx.oslo_context() if ctx else {},
            )
        )


def _versions(base: str) -> dict[str, Any]:
    current = ["2.17"]
    older = ["2.16", "2.15", "2.9", "2.7", "2.6", "2.5", "2.4", "2.3", "2.2", "2.1", "2.0"]
    return {
        "versions": [
            {
                "id": f"v{v}",
                "status": "CURRENT" if v in current else "SUPPORTED",
                "links": [{"rel": "self", "href": f"{base}/image/v2/"}],
            }
            for v in current + older
        ]
    }


class ImageAPI(ServiceAPI):
    name = "image"
    prefix = "/image"
    public_endpoints = frozenset({"versions"})

    @property
    def state(self) -> ImageState:
        return self.cloud.image

    def rules(self) -> list[Rule]:
        return [
            Rule("/", endpoint="versions", methods=["GET"]),
            Rule("/versions", endpoint="versions", methods=["GET"]),
            Rule("/v2", endpoint="versions", methods=["GET"]),
            Rule("/v2/images", endpoint="list_images", methods=["GET"]),
            Rule("/v2/images", endpoint="create_image", methods=["POST"]),
            Rule("/v2/images/<iid>", endpoint="get_image", methods=["GET"]),
            Rule("/v2/images/<iid>", endpoint="patch_image", methods=["PATCH"]),
            Rule("/v2/images/<iid>", endpoint="delete_image", methods=["DELETE"]),
            Rule("/v2/images/<iid>/file", endpoint="upload", methods=["PUT"]),
            Rule("/v2/images/<iid>/file", endpoint="download", methods=["GET"]),
            Rule("/v2/images/<iid>/actions/deactivate", endpoint="deactivate", methods=["POST"]),
            Rule("/v2/images/<iid>/actions/reactivate", endpoint="reactivate", methods=["POST"]),
            Rule("/v2/images/<iid>/tags/<tag>", endpoint="add_tag", methods=["PUT"]),
            Rule("/v2/images/<iid>/tags/<tag>", endpoint="remove_tag", methods=["DELETE"]),
            Rule("/v2/images/<iid>/members", endpoint="list_members", methods=["GET"]),
            Rule("/v2/images/<iid>/members", endpoint="add_member", methods=["POST"]),
            Rule("/v2/images/<iid>/members/<mid>", endpoint="get_member", methods=["GET"]),
            Rule("/v2/images/<iid>/members/<mid>", endpoint="update_member", methods=["PUT"]),
            Rule("/v2/images/<iid>/members/<mid>", endpoint="delete_member", methods=["DELETE"]),
            Rule("/v2/schemas/<path:name>", endpoint="schema", methods=["GET"]),
            Rule("/v2/info/import", endpoint="import_info", methods=["GET"]),
            Rule("/v2/info/stores", endpoint="stores_info", methods=["GET"]),
        ]

    def error(self, err: SimError) -> Response:
        title = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict"}.get(
            err.status, "Error"
        )
        text = (
            f"<html>\n <head>\n  <title>{err.status} {title}</title>\n </head>\n <body>\n"
            f"  <h1>{err.status} {title}</h1>\n  {err.message}<br /><br />\n\n\n </body>\n"
            "</html>"
        )
        return Response(text, status=err.status, mimetype="text/html")

    def versions(self, request: Request, ctx: Ctx | None) -> Response:
        return json_response(
            _versions(base_url(request)),
            300 if request.path.endswith(("/image", "/image/")) else 200,
        )

    def list_images(self, request: Request, ctx: Ctx | None) -> Response:
        assert ctx is not None
        args = request.args.to_dict()
        limit = min(int(args.pop("limit", 25)), 1000)
        marker = args.pop("marker", None)
        with self.cloud.lock:
            rows = self.state.listed(ctx, args)
            if marker:
                idx = next((i for i, im in enumerate(rows) if im.id == marker), None)
                if idx is None:
                    raise SimError(400, f"marker [{marker}] not found", "BadRequest")
                rows = rows[idx + 1 :]
            page = rows[:limit]
            body: dict[str, Any] = {
                "images": [im.to_api() for im in page],
                "first": "/v2/images",
                "schema": "/v2/schemas/images",
            }
        if len(rows) > limit:
            params = dict(request.args.to_dict(), marker=page[-1].id, limit=str(limit))
            body["next"] = "/v2/images?" + urlencode(params)
        return json_response(body)

    def get_image(self, request: Request, ctx: Ctx | None, iid: str) -> Response:
        with self.cloud.lock:
            return json_response(self.state.get(ctx, iid).to_api())

    def create_image(self, request: Request, ctx: Ctx | None) -> Response:
        assert ctx is not None
        spec = dict(read_json(request))
        visibility = spec.pop("visibility", "shared")
        if visibility == "public" and not ctx.is_admin:
            raise SimError(403, "Forbidden to publicize image.", "Forbidden")
        owner = spec.pop("owner", None) if ctx.is_admin else None
        for key in _READ_ONLY & set(spec):
            if key != "id":
                raise SimError(403, f"Attribute '{key}' is read-only.", "Forbidden")
        image = self.state.create_image(
            owner=owner or ctx.project_id,
            name=spec.pop("name", None),
            visibility=visibility,
            protected=bool(spec.pop("protected", False)),
            os_hidden=bool(spec.pop("os_hidden", False)),
            tags=spec.pop("tags", None),
            id=spec.pop("id", None),
            disk_format=spec.pop("disk_format", None),
            container_format=spec.pop("container_format", None),
            properties={k: v for k, v in spec.items() if k not in GLANCE_CORE_FIELDS},
            ctx=ctx,
        )
        return json_response(image.to_api(), 201, {"Location": f"/v2/images/{image.id}"})

    def patch_image(self, request: Request, ctx: Ctx | None, iid: str) -> Response:
        ops = read_json(request)
        if not isinstance(ops, list):
            raise SimError(400, "Expected a JSON patch list", "BadRequest")
        changes: dict[str, Any] = {}
        removed: list[str] = []
        for op in ops:
            path = str(op.get("path", "")).lstrip("/")
            if op.get("op") in ("add", "replace"):
                changes[path] = op.get("value")
            elif op.get("op") == "remove":
                removed.append(path)
            else:
                raise SimError(400, f"Unsupported op {op.get('op')}", "BadRequest")
        image = self.state.update(ctx, iid, changes, removed)
        return json_response(image.to_api())

    def delete_image(self, request: Request, ctx: Ctx | None, iid: str) -> Response:
        self.state.delete(ctx, iid)
        return empty(204)

    def upload(self, request: Request, ctx: Ctx | None, iid: str) -> Response:
        self.state.upload(ctx, iid, request.get_data())
        return empty(204)

    def deactivate(self, request: Request, ctx: Ctx | None, iid: str) -> Response:
        self.state.set_active(ctx, iid, active=False)
        return empty(204)

    def reactivate(self, request: Request, ctx: Ctx | None, iid: str) -> Response:
        self.state.set_active(ctx, iid, active=True)
        return empty(204)

    def add_tag(self, request: Request, ctx: Ctx | None, iid: str, tag: str) -> Response:
        self.state.tag(ctx, iid, tag, add=True)
        return empty(204)

    def remove_tag(self, request: Request, ctx: Ctx | None, iid: str, tag: str) -> Response:
        self.state.tag(ctx, iid, tag, add=False)
        return empty(204)

    def download(self, request: Request, ctx: Ctx | None, iid: str) -> Response:
        image = self.state.get(ctx, iid)
        if image.status == "deactivated" and not (ctx and ctx.is_admin):
            raise SimError(
                403,
                "The requested image has been deactivated. Image data download is forbidden.",
                "Forbidden",
            )
        data = self.state.data.get(image.id)
        if data is None:
            return empty(204)
        return Response(
            data, mimetype="application/octet-stream", headers={"Content-MD5": image.checksum or ""}
        )

    # -- members ---------------------------------------------------------------------------
    @staticmethod
    def _member_api(image_id: str, m: Member) -> dict[str, Any]:
        return {
            "image_id": image_id,
            "member_id": m.member_id,
            "status": m.status,
            "created_at": iso_z(m.created_at),
            "updated_at": iso_z(m.updated_at),
            "schema": "/v2/schemas/member",
        }

    def list_members(self, request: Request, ctx: Ctx | None, iid: str) -> Response:
        with self.cloud.lock:
            image = self.state.get(ctx, iid)
            if image.visibility != "shared":
                raise SimError(403, "Only shared images have members.", "Forbidden")
            members = [
                self._member_api(image.id, m)
                for m in image.members.values()
                if ctx is None
                or ctx.is_admin
                or image.owner == ctx.project_id
                or m.member_id == ctx.project_id
            ]
        return json_response({"members": members, "schema": "/v2/schemas/members"})

    def add_member(self, request: Request, ctx: Ctx | None, iid: str) -> Response:
        member_id = read_json(request).get("member", "")
        member = self.state.add_member(ctx, iid, member_id)
        return json_response(self._member_api(iid, member))

    def get_member(self, request: Request, ctx: Ctx | None, iid: str, mid: str) -> Response:
        image = self.state.get(ctx, iid)
        member = image.members.get(mid)
        if member is None:
            raise SimError(404, f"Member {mid} not found", "NotFound")
        return json_response(self._member_api(iid, member))

    def update_member(self, request: Request, ctx: Ctx | None, iid: str, mid: str) -> Response:
        status = read_json(request).get("status", "")
        member = self.state.set_member_status(ctx, iid, mid, status)
        return json_response(self._member_api(iid, member))

    def delete_member(self, request: Request, ctx: Ctx | None, iid: str, mid: str) -> Response:
        self.state.remove_member(ctx, iid, mid)
        return empty(204)

    def schema(self, request: Request, ctx: Ctx | None, name: str) -> Response:
        return json_response(
            {"name": name, "properties": {}, "additionalProperties": {"type": "string"}}
        )

    def import_info(self, request: Request, ctx: Ctx | None) -> Response:
        return json_response(
            {
                "import-methods": {
                    "description": "Import methods available.",
                    "type": "array",
                    "value": [],
                }
            }
        )

    def stores_info(self, request: Request, ctx: Ctx | None) -> Response:
        return json_response({"stores": [{"id": "file", "default": True}]})
