"""Signing in and out: the Keystone sign-in kept in the signed session cookie.

``POST /signin`` checks a password or an application credential against Keystone
(:mod:`reclaim.web.keystone`) and keeps, under the session key ``signin``, who signed in,
the projects they may see (id and name) and whether they are an operator, with the token's
``expires_at``. The session cookie is signed, not encrypted: it holds no token and no
secret, only what the pages show. A sign-in is dropped once the token's expiry passes,
whatever the cookie's own lifetime, so no session outlives its Keystone token. Each sign-in
also has an id recorded in the table (``pk = web_signin#<id>``, kept until the token
expires): signing out deletes it, so a copy of the cookie taken before is worth nothing.

Sign-in attempts are rate-limited in this process (the ``limits`` library, in memory):
every attempt counts against the remote address, every refused one against the user
name (``web.signin_per_address``, ``web.signin_per_user``). Behind API Gateway the address
is the caller's (``sourceIp``); ``reclaim web`` behind a proxy sees the proxy's unless the
proxy's headers are trusted. A Lambda environment keeps its own counts, so the limit there
is per environment.

:func:`access` lets a signed-in member see the resources of their projects (an operator
sees every project's); the resource page asks it beside the mail links' check.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from limits import parse as parse_limit
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from reclaim.settings import Settings
from reclaim.store.items import TableItems
from reclaim.web.app import Viewer, flash, web_of
from reclaim.web.keystone import (
    Identity,
    Keystone,
    KeystoneUnavailable,
    SignInRefused,
    auth_url_of,
    expired,
)

#: The session key of a sign-in.
KEY = "signin"
#: Projects kept in the cookie (a browser keeps 4 KB per cookie); the rest are left out.
MAX_SESSION_PROJECTS = 20
#: Characters of a project name kept in the cookie.
MAX_NAME = 64

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SignedIn:
    """Who is signed in, as the session keeps it."""

    user_id: str
    user_name: str
    projects: dict[str, str]
    operator: bool
    expires_at: datetime
    method: str

    def may_see(self, project_id: str | None) -> bool:
        """Whether this person may see a resource of ``project_id`` (operators: any)."""
        return self.operator or (project_id is not None and project_id in self.projects)

    @property
    def who(self) -> str:
        """How audits name this person."""
        return f"{self.user_name} ({self.user_id}) signed in with Keystone"


class SignIns(TableItems):
    """The sign-ins that have not signed out: one item per sign-in id, until its token
    expires (the table's TTL removes it after)."""

    what = "sign-ins"

    @staticmethod
    def _key(sid: str) -> dict[str, Any]:
        return {"pk": {"S": f"web_signin#{sid}"}, "sk": {"S": "signin"}}

    def record(self, sid: str, user_id: str, expires_at: datetime) -> None:
        self._call(
            "put_item",
            Item={
                **self._key(sid),
                "user_id": {"S": user_id},
                "expires_at": {"N": str(int(expires_at.timestamp()) + 1)},
            },
        )

    def live(self, sid: str) -> bool:
        """Whether the sign-in ``sid`` was recorded and has not signed out."""
        found = self._call("get_item", Key=self._key(sid), ConsistentRead=True)
        return "Item" in found

    def drop(self, sid: str) -> None:
        self._call("delete_item", Key=self._key(sid))


def remember(identity: Identity, sid: str) -> dict[str, Any]:
    """The session's record of a sign-in ``sid`` (pure)."""
    return {
        "sid": sid,
        "user_id": identity.user_id,
        "user_name": identity.user_name[:MAX_NAME],
        "projects": [[p.id, p.name[:MAX_NAME]] for p in identity.projects][:MAX_SESSION_PROJECTS],
        "operator": identity.operator,
        "expires_at": identity.expires_at.isoformat(),
        "method": identity.method,
    }


def recall(record: Any, now: datetime) -> SignedIn | None:
    """The sign-in a session record describes, or None if it is missing, malformed or its
    token has expired at ``now`` (pure)."""
    if not isinstance(record, dict):
        return None
    try:
        expires_at = datetime.fromisoformat(record["expires_at"])
        signed = SignedIn(
            user_id=str(record["user_id"]),
            user_name=str(record["user_name"]),
            projects={str(pid): str(name) for pid, name in record["projects"]},
            operator=bool(record["operator"]),
            expires_at=expires_at,
            method=str(record.get("method", "password")),
        )
    except (KeyError, TypeError, ValueError):
        return None
    if expires_at.tzinfo is None or expired(expires_at, now):
        return None
    return signed


def signed_in(request: Request, now: datetime | None = None) -> SignedIn | None:
    """The visitor's sign-in, if any and still within its token's life (an expired one is
    dropped from the session)."""
    if "session" not in request.scope or KEY not in request.session:
        return None
    record = request.session[KEY]
    found = recall(record, now or datetime.now(UTC))
    if found is not None and not SignIns(*_table(request)).live(str(record.get("sid", ""))):
        found = None  # signed out (this is a copy of the cookie), or from before sign-in ids
    if found is None:
        request.session.pop(KEY, None)
    return found


def _table(request: Request) -> tuple[Any, str]:
    store = web_of(request).store
    return store.client, store.table


def require(request: Request) -> SignedIn | Response:
    """The visitor's sign-in; without one, a redirect to the sign-in page (and back after)."""
    found = signed_in(request)
    if found is not None:
        return found
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    root = request.scope.get("root_path", "")
    return RedirectResponse(f"{root}/signin?next={quote(here, safe='/')}", 303)


def access(
    request: Request, resource_type: str, resource_id: str, project_id: str | None
) -> Viewer | None:
    """Signed-in members see their projects' resources, operators every project's."""
    found = signed_in(request)
    if found is None or not found.may_see(project_id):
        return None
    name = found.projects.get(project_id, "") if project_id else ""
    return Viewer(who=found.who, via="keystone", project_id=project_id, project_name=name)


class SignInLimits:
    """Sign-in attempts per remote address and refused ones per user name, in memory."""

    def __init__(self, per_address: str, per_user: str) -> None:
        self.storage = MemoryStorage()
        self.limiter = MovingWindowRateLimiter(self.storage)
        self.per_address = parse_limit(per_address)
        self.per_user = parse_limit(per_user)

    def attempt(self, address: str, user: str) -> bool:
        """Count an attempt from ``address``; False when it or ``user`` is over its limit."""
        if not self.limiter.test(self.per_user, "user", user.casefold()):
            return False
        return self.limiter.hit(self.per_address, "address", address)

    def refused(self, user: str) -> None:
        """Count a refused attempt against ``user``."""
        self.limiter.hit(self.per_user, "user", user.casefold())


def keystone_for(settings: Settings, cloud: str = "") -> Keystone:
    """The Keystone that settings name (``web.keystone_url``), else the auth URL of the
    ``clouds.yaml`` entry ``cloud`` (default: ``OS_CLOUD``), verified as that entry says."""
    web = settings.web
    url: str = web.keystone_url
    verify: bool | str = True
    if not url:
        url, verify = auth_url_of(cloud or os.environ.get("OS_CLOUD", ""))
    if not url:
        raise KeystoneUnavailable(
            "no Keystone to sign in with: set web.keystone_url (RECLAIM_WEB__KEYSTONE_URL) "
            "or OS_CLOUD to a clouds.yaml entry"
        )
    return Keystone(
        url,
        user_domain=web.user_domain,
        member_roles=web.member_roles,
        operator_role=web.operator_role,
        verify=verify,
    )


def _state(request: Request) -> Any:
    """This application's sign-in state: its Keystone and its limits, made on first use."""
    state = request.app.state
    if getattr(state, "signin_limits", None) is None:
        web = web_of(request).settings.web
        state.signin_limits = SignInLimits(web.signin_per_address, web.signin_per_user)
    return state


def keystone_of(request: Request) -> Keystone:
    state = request.app.state
    if getattr(state, "keystone", None) is None:
        # reclaim web --cloud names the clouds.yaml entry (app.state.keystone_cloud)
        cloud = getattr(state, "keystone_cloud", "") or ""
        state.keystone = keystone_for(web_of(request).settings, cloud)
    keystone: Keystone = state.keystone
    return keystone


def safe_next(value: str | None, default: str = "/projects") -> str:
    """A path on this site to go to after signing in (anything else: ``default``) (pure)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    return value


def _form(request: Request, status: int = 200, **context: Any) -> Response:
    return web_of(request).render(
        request,
        "signin.html",
        {
            "next": safe_next(request.query_params.get("next")),
            "error": "",
            "user_name": "",
            "domain": web_of(request).settings.web.user_domain,
            **context,
        },
        status,
    )


def signin_page(request: Request) -> Response:
    """The sign-in form (or, when signed in already, the projects page)."""
    if signed_in(request) is not None:
        return RedirectResponse(
            request.scope.get("root_path", "") + safe_next(request.query_params.get("next")), 303
        )
    return _form(request)


async def signin(request: Request) -> Response:
    """Check the credentials with Keystone; on success keep the sign-in and go on."""
    form = await request.form()
    method = str(form.get("method", "password"))
    user = str(form.get("user_name", "")).strip()
    domain = str(form.get("domain", "")).strip() or None
    secret = str(form.get("password", ""))
    credential = str(form.get("credential_id", "")).strip()
    credential_secret = str(form.get("credential_secret", ""))
    next_path = safe_next(str(form.get("next", "")))
    name = user if method == "password" else credential
    address = request.client.host if request.client else "unknown"
    limits = _state(request).signin_limits
    if not limits.attempt(address, name):
        log.warning("sign-in refused: too many attempts from %s or for %r", address, name)
        raise HTTPException(429, "Too many sign-in attempts. Wait a minute and try again.")
    try:
        keystone = keystone_of(request)
        if method == "application_credential":
            identity = await run_in_threadpool(
                keystone.application_credential, credential, credential_secret
            )
        else:
            identity = await run_in_threadpool(keystone.password, user, secret, domain)
    except SignInRefused:
        limits.refused(name)
        return _form(
            request,
            401,
            error="Keystone did not accept these credentials.",
            user_name=user,
            next=next_path,
            method=method,
        )
    except KeystoneUnavailable as exc:
        log.error("sign-in failed: %s", exc)
        raise HTTPException(503, "Keystone cannot be reached now. Try again later.") from None
    if not identity.projects and not identity.operator:
        limits.refused(name)
        return _form(
            request,
            403,
            error="You hold no role on any project, so there is nothing to show you.",
            user_name=user,
            next=next_path,
        )
    # a new CSRF token with the new rights: a token seen before signing in is worth nothing
    request.session.pop("csrf", None)
    sid = uuid.uuid4().hex
    await run_in_threadpool(
        SignIns(*_table(request)).record, sid, identity.user_id, identity.expires_at
    )
    request.session[KEY] = remember(identity, sid)
    log.info(
        "signed in: %s (%s), operator=%s", identity.user_name, identity.method, identity.operator
    )
    return RedirectResponse(request.scope.get("root_path", "") + next_path, 303)


def signout(request: Request) -> Response:
    """Forget the sign-in, here and in the table (a copy of the cookie signs in no more),
    and everything else the session held (the CSRF token, the pages mail links opened):
    the next person at a shared browser starts afresh."""
    record = request.session.get(KEY)
    if isinstance(record, dict) and record.get("sid"):
        SignIns(*_table(request)).drop(str(record["sid"]))
    request.session.clear()
    flash(request, "You have signed out.")
    return RedirectResponse(request.scope.get("root_path", "") + "/signin", 303)


routes: list[BaseRoute] = [
    Route("/signin", signin_page, methods=["GET"]),
    Route("/signin", signin, methods=["POST"]),
    Route("/signout", signout, methods=["POST"]),
]
