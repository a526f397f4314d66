"""``reclaim web``: the self-service pages, as one Starlette application.

:func:`create_app` builds it on the same settings and timer store as every other command.
Every response carries strict security headers (:class:`SecurityHeaders`: a CSP without
any script, no framing, no sniffing, no referrer; HSTS on https only). Sessions are a
signed cookie (Starlette's ``SessionMiddleware``, key ``web.secret_key``). Every unsafe
request (POST...) must carry the session's CSRF token (:class:`CsrfGuard`), checked before
any endpoint runs. Templates autoescape.

How a page module plugs in
--------------------------
1. Write ``reclaim/web/<page>.py`` exposing ``routes: list[starlette.routing.BaseRoute]``,
   and name the module in :data:`PAGES` (or pass ``pages=`` to :func:`create_app`).
   It may also expose ``access: AccessCheck``: a function ``(request, resource_type,
   resource_id, project_id) -> Viewer | None`` that lets a visitor see a resource's page
   (the mail links' check is :func:`reclaim.web.links.link_access`; a sign-in page adds
   its own). The resource page asks every module's check, in :data:`PAGES` order.
2. Endpoints reach settings, store, clock, notices and cloud through ``web_of(request)``
   (a :class:`Web`) and answer with ``web_of(request).render(request, "page.html", {...})``,
   which adds ``csrf_token``, ``root`` (the path prefix) and ``now`` to the context.
3. Templates go in ``reclaim/web/templates/``, extend ``base.html`` and fill the blocks
   ``title`` and ``main``; styles go in ``static/reclaim.css`` (no inline style, no script:
   the CSP refuses both). Every form is ``method="post"`` and holds
   ``<input type="hidden" name="csrf_token" value="{{ csrf_token }}">``.
4. A refusal is ``raise HTTPException(status, "a sentence for people")``: it is shown on
   the error page. After a POST, redirect (303) to a page; ``flash(request, text)`` shows
   ``text`` once on the next page rendered.
5. ``request.session`` (signed, not encrypted: no secret in it) keeps what a visitor was
   granted; keys in use: ``csrf``, ``links`` (:mod:`reclaim.web.links`), ``flash``.
"""

from __future__ import annotations

import hmac
import importlib
import logging
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reclaim.durations import human_duration
from reclaim.notices.context import long_date, short_date
from reclaim.settings import Settings
from reclaim.store import DynamoTimerStore
from reclaim.sweeper.notices import NoticePort, RecordingNotices
from reclaim.views import stamp

HERE = Path(__file__).parent
log = logging.getLogger("reclaim.web")
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

#: The page modules, each exposing ``routes`` (and optionally ``access``).
PAGES: tuple[str, ...] = (
    "reclaim.web.resource",
    "reclaim.web.session",
    "reclaim.web.projects",
    "reclaim.web.operators",
)

#: The session cookie's name.
SESSION_COOKIE = "reclaim_session"
#: The form field (or ``X-CSRF-Token`` header) that carries the CSRF token.
CSRF_FIELD = "csrf_token"
#: Largest request body read (forms are small; a bigger one is refused, 413).
MAX_BODY = 64 * 1024

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)
HSTS = (b"strict-transport-security", b"max-age=31536000")


@dataclass(frozen=True)
class Viewer:
    """Who is looking at a resource, and through what: ``who`` names them in audits
    (``mail link to a@example.org``), ``via`` is ``link`` or the sign-in's name;
    ``project_name`` the resource's project's name when the check knows it (a sign-in)."""

    who: str
    via: str
    project_id: str | None = None
    project_name: str = ""


class AccessCheck(Protocol):
    """May this visitor see this resource? Their :class:`Viewer`, or None."""

    def __call__(
        self, request: Request, resource_type: str, resource_id: str, project_id: str | None
    ) -> Viewer | None: ...


class CloudWrites(Protocol):
    """The cloud writes the web pages make (an approved exemption's server metadata). A
    cloud that also reads Keystone projects (``project(id)`` with a ``name``, as
    :class:`reclaim.sweeper.cloud.OpenStackCloud`) names them (:meth:`Web.project_name`)."""

    def set_server_metadata(self, server_id: str, key: str, value: str) -> Any: ...


#: How long a project's name read from Keystone is used before it is read again; a read
#: that failed is tried again sooner. At most :data:`NAMES_KEPT` names are kept.
NAMES_TTL = 600.0
NAMES_RETRY = 60.0
NAMES_KEPT = 2048
#: Characters of a project name shown (as a sign-in keeps them).
MAX_PROJECT_NAME = 64


@dataclass
class Web:
    """What every endpoint needs, kept on ``app.state.web``."""

    settings: Settings
    store: DynamoTimerStore
    notices: NoticePort
    clock: Callable[[], datetime]
    templates: Jinja2Templates
    cloud: CloudWrites | None = None
    access: list[AccessCheck] = field(default_factory=list)
    _names: dict[str, tuple[float, str]] = field(default_factory=dict, repr=False)
    _names_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def now(self) -> datetime:
        return self.clock()

    def project_name(self, project_id: str) -> str:
        """The name Keystone gives ``project_id``, read through the cloud and remembered a
        while (:data:`NAMES_TTL`); empty without a cloud that reads projects, or when the
        read fails or finds none (the page then shows the id: never an error page)."""
        read = getattr(self.cloud, "project", None)
        if read is None:
            return ""
        now = time.monotonic()
        with self._names_lock:
            kept = self._names.get(project_id)
        if kept is not None and now < kept[0]:
            return kept[1]
        try:
            found = read(project_id)
            name = str(getattr(found, "name", "") or "")[:MAX_PROJECT_NAME]
            until = now + NAMES_TTL
        except Exception as exc:
            log.warning("project %s: its name was not read from Keystone: %s", project_id, exc)
            name, until = "", now + NAMES_RETRY
        with self._names_lock:
            if len(self._names) >= NAMES_KEPT:
                self._names.clear()
            self._names[project_id] = (until, name)
        return name

    def viewer(
        self, request: Request, resource_type: str, resource_id: str, project_id: str | None
    ) -> Viewer | None:
        """The first access check that lets the visitor see the resource, else None."""
        for check in self.access:
            seen = check(request, resource_type, resource_id, project_id)
            if seen is not None:
                return seen
        return None

    def render(
        self, request: Request, name: str, context: dict[str, Any], status: int = 200
    ) -> Response:
        """The template ``name`` with ``context`` plus ``csrf_token``, ``root``, ``now``, the
        pending ``flash`` message and the site's ``cloud_name``, ``support`` and
        ``policy_url`` (the mailer's settings, as the mails name them)."""
        flashed = request.session.pop("flash", "") if "session" in request.scope else ""
        site = self.settings.mailer
        full = {
            "cloud_name": site.cloud_name,
            "support": site.support,
            "policy_url": site.policy_url,
            "csrf_token": csrf_token(request),
            "root": request.scope.get("root_path", ""),
            "now": self.now(),
            "flash": flashed,
            **context,
        }
        return self.templates.TemplateResponse(request, name, full, status_code=status)


def web_of(request: Request) -> Web:
    """The application's :class:`Web`."""
    web: Web = request.app.state.web
    return web


def with_form(
    handler: Callable[[Request, FormData], Response],
) -> Callable[[Request], Awaitable[Response]]:
    """A form's endpoint: the form is read on the event loop, then ``handler``, which calls
    the store and the cloud (blocking calls), runs in a worker thread, as Starlette runs a
    plain ``def`` page: one slow call holds up no other request."""

    async def endpoint(request: Request) -> Response:
        form = await request.form()
        return await run_in_threadpool(handler, request, form)

    endpoint.__doc__ = handler.__doc__
    return endpoint


def flash(request: Request, text: str) -> None:
    """Show ``text`` once, on the next page rendered for this session."""
    request.session["flash"] = text


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use)."""
    if "session" not in request.scope:
        return ""
    token = request.session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def templates_env() -> jinja2.Environment:
    """The pages' Jinja2 environment: autoescaping always on, dates as the mails write them."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["long_date"] = long_date
    env.filters["short_date"] = short_date
    env.filters["duration"] = human_duration
    env.filters["stamp"] = stamp  # as the commands show times: 2026-03-15T09:00:00Z
    return env


class SecurityHeaders:
    """Adds the security headers to every response (HSTS only when served over https)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"
        static = scope.get("path", "").startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in {h for h, _ in _HEADERS}
                ]
                headers.extend(_HEADERS)
                if https:
                    headers.append(HSTS)
                if not static:
                    # pages show people's resources: never kept by a shared cache or browser
                    headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class CsrfGuard:
    """Refuses any unsafe request (POST, PUT, PATCH, DELETE) whose ``csrf_token`` form field
    (or ``X-CSRF-Token`` header) is not the session's token, before any endpoint runs.

    The token lives in the signed session cookie and is written into every form; a page of
    another site can make the browser send the cookie but cannot read the token. Bodies
    over :data:`MAX_BODY` are refused (413). The body read is handed on to the endpoint.
    """

    def __init__(self, app: ASGIApp, refuse: Callable[[Request, int, str], Response]) -> None:
        self.app = app
        self.refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_BODY:
                await self.refuse(Request(scope), 413, "That form is too large.")(
                    scope, receive, send
                )
                return
        request = Request(scope)
        given = request.headers.get("x-csrf-token", "")
        if not given and request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            given = (fields.get(CSRF_FIELD) or [""])[0]
        expected = scope.get("session", {}).get("csrf", "")
        if not (
            isinstance(expected, str)
            and expected
            and hmac.compare_digest(given.encode(), expected.encode())
        ):
            response = self.refuse(
                request,
                403,
                "This form was not sent from the page it belongs to, or the page has been "
                "open too long. Open the link from your mail again and retry.",
            )
            await response(scope, receive, send)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


TITLES = {
    400: "This link is not valid",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    410: "This link has expired",
    413: "Too large",
    429: "Too many requests",
}


def _error_page(web: Web) -> Callable[[Request, int, str], Response]:
    def page(request: Request, status: int, message: str) -> Response:
        title = TITLES.get(status, "Something went wrong")
        return web.render(
            request, "error.html", {"title": title, "message": message, "status": status}, status
        )

    return page


def page_modules(names: Sequence[str]) -> list[Any]:
    """The page modules named, imported."""
    return [importlib.import_module(n) for n in names]


async def healthz(request: Request) -> Response:
    """Liveness: the process answers (no store or cloud call: a probe must stay cheap)."""
    return PlainTextResponse("ok\n")


def create_app(
    settings: Settings,
    store: DynamoTimerStore,
    *,
    notices: NoticePort | None = None,
    cloud: CloudWrites | None = None,
    clock: Callable[[], datetime] | None = None,
    pages: Sequence[str] = PAGES,
    https: bool | None = None,
) -> Starlette:
    """The web application on ``settings`` and ``store``.

    ``notices`` carries operator alerts (default: kept in memory), ``cloud`` the writes an
    approved exemption makes (None: approvals are refused), ``clock`` the time (default: the
    real one; a simulated cloud's in tests and demos). ``https`` marks the session cookie
    Secure (default: when ``web.base_url`` is https). Raises ``ValueError`` without
    ``web.secret_key``.
    """
    key = settings.web.secret_key
    if not key:
        raise ValueError(
            "web.secret_key is empty: set RECLAIM_WEB__SECRET_KEY to a long random value "
            "(it signs the mail links and the sessions)"
        )
    modules = page_modules(pages)
    web = Web(
        settings=settings,
        store=store,
        notices=notices if notices is not None else RecordingNotices(),
        clock=clock or (lambda: datetime.now(UTC)),
        templates=Jinja2Templates(env=templates_env()),
        cloud=cloud,
        access=[m.access for m in modules if hasattr(m, "access")],
    )
    refuse = _error_page(web)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return refuse(request, exc.status_code, exc.detail)

    async def server_error(request: Request, exc: Exception) -> Response:
        # Starlette answers a failure outside every middleware: the headers are added here
        response = refuse(request, 500, "Something failed on our side. Try again in a while.")
        https_only = (HSTS,) if request.url.scheme == "https" else ()
        for name, value in (*_HEADERS, *https_only, (b"cache-control", b"no-store")):
            response.headers[name.decode()] = value.decode()
        return response

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ]
    for m in modules:
        routes.extend(m.routes)
    secure = settings.web.base_url.startswith("https://") if https is None else https
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(
                SessionMiddleware,
                secret_key=key,
                session_cookie=SESSION_COOKIE,
                max_age=int(settings.web.session_lifetime.total_seconds()),
                same_site="lax",
                https_only=secure,
            ),
            Middleware(CsrfGuard, refuse=refuse),
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    app.state.web = web
    return app
