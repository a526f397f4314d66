"""HTTP plumbing shared by the simulated services: routing, auth, errors, faults, logging."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from reclaim_sim.core import Ctx, SimError
from reclaim_sim.faults import RequestRecord

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

    from reclaim_sim.cloud import Cloud

Handler = Callable[..., Response]
_log = logging.getLogger(__name__)


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        json.dumps(body), status=status, headers=dict(headers or {}), mimetype="application/json"
    )


def empty(status: int = 204, headers: Mapping[str, str] | None = None) -> Response:
    resp = Response(b"", status=status, headers=dict(headers or {}))
    if status == 204:
        resp.headers.pop("Content-Type", None)
    return resp


def read_json(request: Request) -> Any:
    """The request body as JSON; ``{}`` when empty; 400 when not JSON."""
    data = request.get_data(cache=True)
    if not data:
        return {}
    try:
        return json.loads(data)
    except ValueError as exc:
        raise SimError(400, f"Malformed request body: {exc}", "badRequest") from exc


class ServiceAPI:
    """One simulated service: a werkzeug ``Map`` of routes below ``prefix``.

    Handlers are methods named by the rule endpoint, called as
    ``handler(request, ctx, **url_values)``; ``ctx`` is ``None`` only on public routes.
    """

    name: str = ""
    prefix: str = ""
    public_endpoints: frozenset[str] = frozenset()
    #: the headers that carry the request id on every response (oslo.middleware's, and the
    #: compatibility header a service adds to it)
    request_id_headers: tuple[str, ...] = ("X-OpenStack-Request-Id",)

    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.url_map = Map(self.rules(), strict_slashes=False, merge_slashes=False)

    def rules(self) -> list[Rule]:
        raise NotImplementedError

    def error(self, err: SimError) -> Response:
        """The error body in this service's style (Nova/Cinder style by default)."""
        kind = err.kind or {
            400: "badRequest",
            403: "forbidden",
            404: "itemNotFound",
            409: "conflictingRequest",
        }.get(err.status, "computeFault")
        return json_response({kind: {"code": err.status, "message": err.message}}, err.status)

    def unauthorized(self) -> Response:
        body = {
            "error": {
                "code": 401,
                "message": "The request you have made requires authentication.",
                "title": "Unauthorized",
            }
        }
        return json_response(body, 401, {"WWW-Authenticate": 'Keystone uri="/identity"'})

    def handle(
        self, request: Request, ctx_for: Callable[[], Ctx | None]
    ) -> tuple[Response, Ctx | None]:
        sub = request.path[len(self.prefix) :] or "/"
        adapter = self.url_map.bind("sim", path_info=sub)
        ctx: Ctx | None = None
        try:
            endpoint, values = adapter.match(sub, method=request.method)
            if endpoint not in self.public_endpoints:
                ctx = ctx_for()
                if ctx is None:
                    return self.unauthorized(), None
            handler: Handler = getattr(self, str(endpoint))
            return handler(request, ctx, **values), ctx
        except SimError as err:
            return self.error(err), ctx
        except (MethodNotAllowed, NotFound):
            # An API the simulation does not serve: never a 404 or 405 that a client could
            # take for "already gone" or "not supported by this cloud".
            return self.error(not_implemented(self.name, request.method, request.path)), ctx
        except HTTPException as exc:  # pragma: no cover - werkzeug redirect etc.
            return self.error(SimError(exc.code or 500, str(exc), None)), ctx


class SimApp:
    """The WSGI application: every service under its path prefix on one port."""

    def __init__(self, cloud: Cloud, services: list[ServiceAPI]) -> None:
        self.cloud = cloud
        self.services = sorted(services, key=lambda s: len(s.prefix), reverse=True)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        request = Request(environ)
        response = self.respond(request)
        return response(environ, start_response)

    def find(self, path: str) -> ServiceAPI | None:
        for svc in self.services:
            if path == svc.prefix or path.startswith(svc.prefix + "/"):
                return svc
        return None

    def respond(self, request: Request) -> Response:
        """The service's answer, with the request id every OpenStack service sends."""
        request_id = f"req-{uuid.uuid4()}"
        svc = self.find(request.path)
        response = self._respond(request, svc, request_id)
        for header in svc.request_id_headers if svc else ServiceAPI.request_id_headers:
            response.headers[header] = request_id
        return response

    def _respond(self, request: Request, svc: ServiceAPI | None, request_id: str) -> Response:
        cloud = self.cloud
        if svc is None:
            return self.root(request)
        method = request.method
        ctx: Ctx | None = None
        token = request.headers.get("X-Auth-Token")

        def ctx_for() -> Ctx | None:
            found = cloud.identity.context_for_token(token) if token else None
            # the service's own request id: in its notifications' context as in its answer
            return dataclasses.replace(found, request_id=request_id) if found else None

        rule = cloud.faults.take(svc.name, method, request.path)
        if rule is not None:
            if rule.delay:
                time.sleep(rule.delay)
            if rule.drop:
                self._drop(request)
                self._log(request, svc.name, 0, ctx_for(), fault=True)
                return Response(b"", status=500)
            if rule.status is not None:
                body = rule.body or f"Injected fault: {rule.status}"
                resp = json_response({"error": {"code": rule.status, "message": body}}, rule.status)
                self._log(request, svc.name, rule.status, ctx_for(), fault=True)
                return resp
        try:
            response, ctx = svc.handle(request, ctx_for)
        except Exception as exc:  # a simulation bug: answer 500 as a service would, and log
            _log.exception("unhandled error in the simulated %s service", svc.name)
            response = json_response({"error": {"code": 500, "message": repr(exc)}}, 500)
        self._log(request, svc.name, response.status_code, ctx)
        return response

    def root(self, request: Request) -> Response:
        if request.path in ("", "/"):
            base = request.host_url.rstrip("/")
            return json_response({"services": {s.name: f"{base}{s.prefix}" for s in self.services}})
        return json_response({"error": {"code": 404, "message": "Not found"}}, 404)

    def _log(
        self, request: Request, service: str, status: int, ctx: Ctx | None, *, fault: bool = False
    ) -> None:
        cloud = self.cloud
        cloud.requests.append(
            RequestRecord(
                method=request.method,
                path=request.path,
                query=request.query_string.decode("latin-1"),
                service=service,
                status=status,
                project_id=ctx.project_id if ctx else None,
                user_id=ctx.user_id if ctx else None,
                timestamp=cloud.clock.now(),
                fault=fault,
                request_id=request.headers.get("X-OpenStack-Request-ID"),
            )
        )

    @staticmethod
    def _drop(request: Request) -> None:
        sock = request.environ.get("werkzeug.socket")
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def not_implemented(service: str, method: str, path: str) -> SimError:
    """501 for a request the simulated cloud does not serve, saying so."""
    return SimError(
        501,
        f"The simulated cloud (reclaim_sim) does not implement {method} {path} of its "
        f"{service} service; a real cloud may serve it.",
        "notImplemented",
    )


def base_url(request: Request) -> str:
    return request.host_url.rstrip("/")


def query_flag(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.strip().lower() in ("1", "true", "yes", "on", "t", "y")
