"""Simulated Swift: an account per project, containers and objects, bulk delete."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from reclaim_sim.core import Ctx, SimError
from reclaim_sim.wsgi import ServiceAPI, empty, json_response

if TYPE_CHECKING:
    from reclaim_sim.cloud import Cloud


@dataclass
class StoredObject:
    name: str
    data: bytes
    content_type: str
    last_modified: datetime

    @property
    def etag(self) -> str:
        return hashlib.md5(self.data).hexdigest()


@dataclass
class Container:
    name: str
    created_at: datetime
    objects: dict[str, StoredObject] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def bytes_used(self) -> int:
        return sum(len(o.data) for o in self.objects.values())


class ObjectStoreState:
    """Swift accounts (one per project id) holding containers and objects."""

    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.accounts: dict[str, dict[str, Container]] = {}

    def account(self, project_id: str) -> dict[str, Container]:
        return self.accounts.setdefault(project_id, {})

    def container(self, project_id: str, name: str) -> Container:
        found = self.account(project_id).get(name)
        if found is None:
            raise SimError(404, "Not Found", "NotFound")
        return found

    def put_container(self, project_id: str, name: str) -> bool:
        """Create a container; False when it already existed."""
        with self.cloud.transaction():
            account = self.account(project_id)
            if name in account:
                return False
            account[name] = Container(name, self.cloud.clock.now())
            return True

    def delete_container(self, project_id: str, name: str) -> None:
        with self.cloud.transaction():
            container = self.container(project_id, name)
            if container.objects:
                raise SimError(
                    409, "There was a conflict when trying to complete your request.", "Conflict"
                )
            del self.account(project_id)[name]

    def put_object(
        self,
        project_id: str,
        container: str,
        name: str,
        data: bytes,
        content_type: str = "application/octet-stream",
    ) -> StoredObject:
        with self.cloud.transaction():
            c = self.container(project_id, container)
            obj = StoredObject(name, data, content_type, self.cloud.clock.now())
            c.objects[name] = obj
            return obj

    def delete_object(self, project_id: str, container: str, name: str) -> None:
        with self.cloud.transaction():
            c = self.container(project_id, container)
            if c.objects.pop(name, None) is None:
                raise SimError(404, "Not Found", "NotFound")


def _http_date(when: datetime) -> str:
    return when.strftime("%a, %d %b %Y %H:%M:%S GMT")


class ObjectStoreAPI(ServiceAPI):
    name = "object-store"
    prefix = "/object-store"
    public_endpoints = frozenset({"info"})

    @property
    def state(self) -> ObjectStoreState:
        return self.cloud.object_store

    def rules(self) -> list[Rule]:
        a = "/v1/AUTH_<account>"
        return [
            Rule("/info", endpoint="info", methods=["GET"]),
            Rule(a, endpoint="account", methods=["GET", "HEAD", "POST", "DELETE"]),
            Rule(
                f"{a}/<container>",
                endpoint="container",
                methods=["GET", "HEAD", "PUT", "POST", "DELETE"],
            ),
            Rule(
                f"{a}/<container>/<path:obj>",
                endpoint="object",
                methods=["GET", "HEAD", "PUT", "POST", "DELETE"],
            ),
        ]

    def error(self, err: SimError) -> Response:
        text = {404: "Not Found", 403: "Forbidden", 409: "Conflict"}.get(err.status, err.message)
        return Response(
            f"<html><h1>{text}</h1><p>{err.message}</p></html>",
            status=err.status,
            mimetype="text/html",
        )

    @staticmethod
    def _check(ctx: Ctx | None, account: str) -> None:
        if ctx is None or (ctx.project_id != account and not ctx.is_admin):
            raise SimError(403, "Access was denied to this resource.", "Forbidden")

    def info(self, request: Request, ctx: Ctx | None) -> Response:
        return json_response(
            {
                "swift": {
                    "version": "2.34.0",
                    "max_file_size": 5368709122,
                    "account_listing_limit": 10000,
                    "container_listing_limit": 10000,
                },
                "bulk_delete": {"max_deletes_per_request": 10000, "max_failed_deletes": 1000},
                "tempurl": {"methods": ["GET", "HEAD", "PUT", "POST", "DELETE"]},
            }
        )

    @staticmethod
    def _listing(
        request: Request, names: list[str], rows: list[dict[str, Any]], headers: dict[str, str]
    ) -> Response:
        args = request.args
        prefix, marker = args.get("prefix"), args.get("marker")
        limit = int(args.get("limit", 10000))
        picked = [
            r
            for n, r in sorted(zip(names, rows, strict=True))
            if (prefix is None or n.startswith(prefix)) and (marker is None or n > marker)
        ]
        picked = picked[:limit]
        if request.method == "HEAD":
            return empty(204, headers)
        if args.get("format") == "json" or "json" in request.headers.get("Accept", ""):
            return Response(
                json.dumps(picked),
                status=200,
                headers=headers,
                content_type="application/json; charset=utf-8",
            )
        if not picked:
            return empty(204, headers)
        return Response(
            "".join(r["name"] + "\n" for r in picked),
            status=200,
            headers=headers,
            content_type="text/plain; charset=utf-8",
        )

    def account(self, request: Request, ctx: Ctx | None, account: str) -> Response:
        self._check(ctx, account)
        if "bulk-delete" in request.args:
            return self._bulk_delete(request, account)
        if request.method in ("POST", "DELETE"):
            return empty(204)
        with self.cloud.lock:
            containers = self.state.account(account)
            headers = {
                "X-Account-Container-Count": str(len(containers)),
                "X-Account-Object-Count": str(sum(len(c.objects) for c in containers.values())),
                "X-Account-Bytes-Used": str(sum(c.bytes_used for c in containers.values())),
                "X-Timestamp": "1700000000.00000",
            }
            names = list(containers)
            rows = [
                {
                    "name": c.name,
                    "count": len(c.objects),
                    "bytes": c.bytes_used,
                    "last_modified": c.created_at.strftime("%Y-%m-%dT%H:%M:%S.%f"),
                }
                for c in containers.values()
            ]
        return self._listing(request, names, rows, headers)

    def _bulk_delete(self, request: Request, account: str) -> Response:
        deleted = not_found = 0
        errors: list[list[str]] = []
        for line in request.get_data(as_text=True).splitlines():
            path = unquote(line.strip()).lstrip("/")
            if not path:
                continue
            container, _, obj = path.partition("/")
            try:
                if obj:
                    self.state.delete_object(account, container, obj)
                else:
                    self.state.delete_container(account, container)
                deleted += 1
            except SimError as exc:
                if exc.status == 404:
                    not_found += 1
                else:
                    errors.append([path, f"{exc.status} {exc.message}"])
        return json_response(
            {
                "Number Deleted": deleted,
                "Number Not Found": not_found,
                "Response Status": "400 Bad Request" if errors else "200 OK",
                "Response Body": "",
                "Errors": errors,
            }
        )

    def container(
        self, request: Request, ctx: Ctx | None, account: str, container: str
    ) -> Response:
        self._check(ctx, account)
        state = self.state
        if request.method == "PUT":
            created = state.put_container(account, container)
            return empty(201 if created else 202)
        if request.method == "DELETE":
            state.delete_container(account, container)
            return empty(204)
        with self.cloud.lock:
            c = state.container(account, container)
            if request.method == "POST":
                c.metadata.update(
                    {
                        k: v
                        for k, v in request.headers.items()
                        if k.lower().startswith("x-container-meta-")
                    }
                )
                return empty(204)
            headers = {
                "X-Container-Object-Count": str(len(c.objects)),
                "X-Container-Bytes-Used": str(c.bytes_used),
                "X-Timestamp": f"{c.created_at.timestamp():.5f}",
                **c.metadata,
            }
            names = list(c.objects)
            rows = [
                {
                    "name": o.name,
                    "hash": o.etag,
                    "bytes": len(o.data),
                    "content_type": o.content_type,
                    "last_modified": o.last_modified.strftime("%Y-%m-%dT%H:%M:%S.%f"),
                }
                for o in c.objects.values()
            ]
        return self._listing(request, names, rows, headers)

    def object(
        self, request: Request, ctx: Ctx | None, account: str, container: str, obj: str
    ) -> Response:
        self._check(ctx, account)
        state = self.state
        if request.method == "PUT":
            stored = state.put_object(
                account,
                container,
                obj,
                request.get_data(),
                request.content_type or "application/octet-stream",
            )
            return empty(
                201, {"Etag": stored.etag, "Last-Modified": _http_date(stored.last_modified)}
            )
        if request.method == "DELETE":
            state.delete_object(account, container, obj)
            return empty(204)
        with self.cloud.lock:
            found = state.container(account, container).objects.get(obj)
            if found is None:
                raise SimError(404, "Not Found", "NotFound")
            if request.method == "POST":
                return empty(202)
            headers = {
                "Etag": found.etag,
                "Last-Modified": _http_date(found.last_modified),
                "X-Timestamp": f"{found.last_modified.timestamp():.5f}",
            }
            # for HEAD werkzeug sends the headers (Content-Length included) without the body
            return Response(
                found.data, status=200, headers=headers, content_type=found.content_type
            )
