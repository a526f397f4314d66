"""Simulated Keystone v3: projects, users, role assignments, password tokens, catalog."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from reclaim_sim.core import (
    Ctx,
    SimError,
    catalog,
    forbidden,
    new_hex_id,
)
from reclaim_sim.notify import Notification
from reclaim_sim.wsgi import ServiceAPI, base_url, empty, json_response, query_flag, read_json

if TYPE_CHECKING:
    from reclaim_sim.cloud import Cloud

DEFAULT_DOMAIN = {"id": "default", "name": "Default"}
ROLE_NAMES = ("admin", "member", "reader")
_CORE_PROJECT_KEYS = frozenset(
    {
        "id",
        "name",
        "domain_id",
        "enabled",
        "description",
        "tags",
        "parent_id",
        "is_domain",
        "options",
        "links",
    }
)


@dataclass
class Project:
    id: str
    name: str
    enabled: bool = True
    description: str = ""
    tags: list[str] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
    domain_id: str = "default"

    def to_api(self, base: str = "") -> dict[str, Any]:
        body: dict[str, Any] = dict(self.properties)
        body.update(
            {
                "id": self.id,
                "name": self.name,
                "domain_id": self.domain_id,
                "enabled": self.enabled,
                "description": self.description,
                "tags": list(self.tags),
                "parent_id": self.domain_id,
                "is_domain": False,
                "options": {},
                "links": {"self": f"{base}/identity/v3/projects/{self.id}"},
            }
        )
        return body


@dataclass
class User:
    id: str
    name: str
    email: str | None = None
    password: str = "password"
    enabled: bool = True
    default_project_id: str | None = None
    domain_id: str = "default"

    def to_api(self, base: str = "") -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "domain_id": self.domain_id,
            "enabled": self.enabled,
            "password_expires_at": None,
            "options": {},
            "links": {"self": f"{base}/identity/v3/users/{self.id}"},
        }
        if self.email is not None:
            body["email"] = self.email
        if self.default_project_id:
            body["default_project_id"] = self.default_project_id
        return body


@dataclass(frozen=True)
class Token:
    id: str
    user_id: str
    project_id: str | None
    roles: tuple[str, ...]
    methods: tuple[str, ...]
    issued_at: datetime
    expires_at: datetime
    audit_id: str
    #: the application credential the token was issued for (its roles limit the token's)
    app_credential: AppCredential | None = None


@dataclass(frozen=True)
class AppCredential:
    """A user's application credential: a secret that signs in as the user on one project,
    with at most ``roles`` (the user's roles there when it was made, by default)."""

    id: str
    name: str
    user_id: str
    project_id: str
    secret: str
    roles: tuple[str, ...]


def _implied(roles: set[str]) -> set[str]:
    """The roles held with those they imply: an admin is a member and a reader, a member a
    reader, as Keystone's default role tree has it. Pure."""
    out = set(roles)
    if "admin" in out:
        out |= {"member", "reader"}
    if "member" in out:
        out.add("reader")
    return out


class IdentityState:
    """Keystone's data and rules. Methods take the cloud lock and queue notifications."""

    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.projects: dict[str, Project] = {}
        self.users: dict[str, User] = {}
        self.role_ids: dict[str, str] = {name: new_hex_id() for name in ROLE_NAMES}
        #: (user id, project id) -> role names
        self.assignments: dict[tuple[str, str], set[str]] = {}
        self.tokens: dict[str, Token] = {}
        self.app_credentials: dict[str, AppCredential] = {}
        self._project_names: dict[str, str] = {}
        self._user_names: dict[str, str] = {}

    # -- lookups ---------------------------------------------------------------------------
    def project(self, ref: str) -> Project:
        """A project by id or, failing that, by name."""
        found = self.projects.get(ref) or self.project_by_name(ref)
        if found is None:
            raise SimError(404, f"Could not find project: {ref}.", "NotFound")
        return found

    def project_by_name(self, name: str) -> Project | None:
        pid = self._project_names.get(name)
        return None if pid is None else self.projects.get(pid)

    def user(self, ref: str) -> User:
        found = self.users.get(ref) or self.users.get(self._user_names.get(ref, ""))
        if found is None:
            raise SimError(404, f"Could not find user: {ref}.", "NotFound")
        return found

    def roles_on(self, user_id: str, project_id: str) -> set[str]:
        return set(self.assignments.get((user_id, project_id), ()))

    # -- changes ---------------------------------------------------------------------------
    def create_project(
        self,
        name: str,
        *,
        id: str | None = None,
        enabled: bool = True,
        description: str = "",
        tags: list[str] | None = None,
        properties: dict[str, Any] | None = None,
        ctx: Ctx | None = None,
    ) -> Project:
        cloud = self.cloud
        with cloud.transaction():
            if self.project_by_name(name) is not None:
                raise SimError(
                    409, f"Conflict occurred attempting to store project - {name}.", "Conflict"
                )
            project = Project(
                id=id or new_hex_id(),
                name=name,
                enabled=enabled,
                description=description,
                tags=list(tags or []),
                properties=dict(properties or {}),
            )
            self.projects[project.id] = project
            self._project_names[project.name] = project.id
            self._notify("created", "project", project.id, ctx)
            cloud.on_project_created(project)
            return project

    def update_project(self, project_id: str, ctx: Ctx | None = None, **changes: Any) -> Project:
        with self.cloud.transaction():
            project = self.project(project_id)
            if "name" in changes and changes["name"] != project.name:
                if self.project_by_name(changes["name"]) is not None:
                    raise SimError(
                        409,
                        f"Conflict occurred attempting to store project - {changes['name']}.",
                        "Conflict",
                    )
                del self._project_names[project.name]
                self._project_names[changes["name"]] = project.id
            for key, value in changes.items():
                if key in ("name", "enabled", "description"):
                    setattr(project, key, value)
                elif key == "tags":
                    project.tags = list(value)
                elif key not in _CORE_PROJECT_KEYS:
                    if value is None:
                        project.properties.pop(key, None)
                    else:
                        project.properties[key] = value
            if changes.get("enabled") is False:
                self._revoke_tokens(lambda t: t.project_id == project.id)
            self._notify("updated", "project", project.id, ctx)
            return project

    def delete_project(self, project_id: str, ctx: Ctx | None = None) -> None:
        """Delete the project and its role assignments; its resources stay (as in Keystone)."""
        with self.cloud.transaction():
            project = self.project(project_id)
            del self.projects[project.id]
            self._project_names.pop(project.name, None)
            for key in [k for k in self.assignments if k[1] == project.id]:
                del self.assignments[key]
            self._revoke_tokens(lambda t: t.project_id == project.id)
            self._notify("deleted", "project", project.id, ctx)

    def create_user(
        self,
        name: str,
        *,
        id: str | None = None,
        email: str | None = None,
        password: str = "password",
        enabled: bool = True,
        default_project_id: str | None = None,
        ctx: Ctx | None = None,
    ) -> User:
        with self.cloud.transaction():
            if name in self._user_names:
                raise SimError(
                    409, f"Conflict occurred attempting to store user - {name}.", "Conflict"
                )
            user = User(
                id=id or new_hex_id(),
                name=name,
                email=email,
                password=password,
                enabled=enabled,
                default_project_id=default_project_id,
            )
            self.users[user.id] = user
            self._user_names[user.name] = user.id
            self._notify("created", "user", user.id, ctx)
            return user

    def update_user(self, user_id: str, ctx: Ctx | None = None, **changes: Any) -> User:
        with self.cloud.transaction():
            user = self.user(user_id)
            if "name" in changes and changes["name"] != user.name:
                if changes["name"] in self._user_names:
                    raise SimError(
                        409,
                        f"Conflict occurred attempting to store user - {changes['name']}.",
                        "Conflict",
                    )
                del self._user_names[user.name]
                self._user_names[changes["name"]] = user.id
            for key in ("name", "email", "password", "enabled", "default_project_id"):
                if key in changes:
                    setattr(user, key, changes[key])
            if changes.get("enabled") is False:
                self._revoke_tokens(lambda t: t.user_id == user.id)
            self._notify("updated", "user", user.id, ctx)
            return user

    def delete_user(self, user_id: str, ctx: Ctx | None = None) -> None:
        with self.cloud.transaction():
            user = self.user(user_id)
            del self.users[user.id]
            self._user_names.pop(user.name, None)
            for key in [k for k in self.assignments if k[0] == user.id]:
                del self.assignments[key]
            self._revoke_tokens(lambda t: t.user_id == user.id)
            self._notify("deleted", "user", user.id, ctx)

    def grant(self, user_id: str, project_id: str, role: str) -> None:
        if role not in self.role_ids:
            raise SimError(404, f"Could not find role: {role}.", "NotFound")
        with self.cloud.transaction():
            user, project = self.user(user_id), self.project(project_id)
            self.assignments.setdefault((user.id, project.id), set()).add(role)

    def revoke(self, user_id: str, project_id: str, role: str) -> None:
        with self.cloud.transaction():
            roles = self.assignments.get((user_id, project_id))
            if not roles or role not in roles:
                raise SimError(404, "Could not find role assignment.", "NotFound")
            roles.discard(role)
            self._revoke_tokens(lambda t: t.user_id == user_id and t.project_id == project_id)

    # -- tokens ----------------------------------------------------------------------------
    def create_application_credential(
        self,
        user_id: str,
        project_id: str,
        name: str,
        *,
        secret: str | None = None,
        roles: tuple[str, ...] | None = None,
    ) -> AppCredential:
        """An application credential of ``user_id`` on ``project_id`` (roles: the user's
        there, or the ones named, which the user must hold)."""
        with self.cloud.transaction():
            held = _implied(self.roles_on(user_id, project_id))
            wanted = tuple(sorted(held)) if roles is None else tuple(sorted(roles))
            if not wanted or not set(wanted) <= held:
                raise SimError(403, "An application credential cannot have roles its user lacks.")
            cred = AppCredential(
                id=new_hex_id(),
                name=name,
                user_id=user_id,
                project_id=project_id,
                secret=secret or secrets.token_urlsafe(32),
                roles=wanted,
            )
            self.app_credentials[cred.id] = cred
            return cred

    def issue_token(
        self,
        user: User,
        project: Project | None,
        methods: tuple[str, ...] = ("password",),
        app_credential: AppCredential | None = None,
    ) -> Token:
        """Issue a token; scoping to a disabled project or one without a role is a 401. An
        application credential's token holds no role the credential lacks."""
        with self.cloud.transaction():
            if not user.enabled:
                raise SimError(401, "The request you have made requires authentication.")
            roles: tuple[str, ...] = ()
            if project is not None:
                if not project.enabled:
                    raise SimError(401, f"The project {project.id} is disabled.")
                held = self.roles_on(user.id, project.id)
                if not held:
                    raise SimError(401, f"User {user.id} has no access to project {project.id}")
                implied = _implied(held)
                if app_credential is not None:
                    implied = _implied(set(app_credential.roles) & implied)
                    if not implied:
                        raise SimError(401, "The application credential's roles are gone.")
                roles = tuple(sorted(implied))
            now = datetime.now(UTC)
            token = Token(
                id="gAAAAA" + secrets.token_urlsafe(48),
                user_id=user.id,
                project_id=project.id if project else None,
                roles=roles,
                methods=methods,
                issued_at=now,
                expires_at=now + timedelta(seconds=self.cloud.config.token_ttl_seconds),
                audit_id=secrets.token_urlsafe(16)[:22],
                app_credential=app_credential,
            )
            self.tokens[token.id] = token
            return token

    def context_for_token(self, token_id: str) -> Ctx | None:
        """The request context for a valid token, else None. Cheap: one dict lookup."""
        token = self.tokens.get(token_id)
        if token is None or token.expires_at < datetime.now(UTC):
            return None
        user = self.users.get(token.user_id)
        project = self.projects.get(token.project_id) if token.project_id else None
        return Ctx(
            user_id=token.user_id,
            project_id=token.project_id,
            roles=token.roles,
            user_name=user.name if user else "",
            project_name=project.name if project else "",
        )

    def _revoke_tokens(self, predicate: Any) -> None:
        for tid in [tid for tid, t in self.tokens.items() if predicate(t)]:
            del self.tokens[tid]

    # -- notifications ---------------------------------------------------------------------
    def _notify(self, operation: str, resource: str, resource_id: str, ctx: Ctx | None) -> None:
        cloud = self.cloud
        if not cloud.notifying:
            return
        now = cloud.clock.now()
        payload: dict[str, Any]
        if cloud.config.keystone_notification_format == "basic":
            payload = {"resource_info": resource_id}
        else:
            target_type = {
                "project": "data/security/project",
                "user": "data/security/account/user",
            }[resource]
            payload = {
                "typeURI": "http://schemas.dmtf.org/cloud/audit/1.0/event",
                "id": str(uuid.uuid4()),
                "eventType": "activity",
                "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.%f+0000"),
                "action": f"{operation}.{resource}",
                "outcome": "success",
                "initiator": {
                    "typeURI": "service/security/account/user",
                    "id": ctx.user_id if ctx else "sim",
                    "user_id": ctx.user_id if ctx else None,
                    "project_id": ctx.project_id if ctx else None,
                    "request_id": ctx.request_id if ctx else None,
                    "host": {"agent": "reclaim-sim", "address": "127.0.0.1"},
                },
                "target": {"typeURI": target_type, "id": resource_id},
                "observer": {"typeURI": "service/security", "id": "openstack:sim-keystone"},
                "resource_info": resource_id,
            }
        cloud.notify(
            Notification(
                exchange="keystone",
                topic="notifications",
                publisher_id="identity.sim",
                event_type=f"identity.{resource}.{operation}",
                payload=payload,
                timestamp=now,
            )
        )


def _version_doc(base: str) -> dict[str, Any]:
    return {
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": f"{base}/identity/v3/"}],
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}
        ],
    }


class IdentityAPI(ServiceAPI):
    name = "identity"
    prefix = "/identity"
    public_endpoints = frozenset({"versions", "version", "issue_token"})

    @property
    def state(self) -> IdentityState:
        return self.cloud.identity

    def rules(self) -> list[Rule]:
        return [
            Rule("/", endpoint="versions", methods=["GET"]),
            Rule("/v3", endpoint="version", methods=["GET"]),
            Rule("/v3/auth/tokens", endpoint="issue_token", methods=["POST"]),
            Rule("/v3/auth/tokens", endpoint="check_token", methods=["GET", "HEAD"]),
            Rule("/v3/auth/tokens", endpoint="revoke_token", methods=["DELETE"]),
            Rule("/v3/auth/projects", endpoint="auth_projects", methods=["GET"]),
            Rule("/v3/projects", endpoint="list_projects", methods=["GET"]),
            Rule("/v3/projects", endpoint="create_project", methods=["POST"]),
            Rule("/v3/projects/<pid>", endpoint="get_project", methods=["GET"]),
            Rule("/v3/projects/<pid>", endpoint="update_project", methods=["PATCH"]),
            Rule("/v3/projects/<pid>", endpoint="delete_project", methods=["DELETE"]),
            Rule(
                "/v3/projects/<pid>/users/<uid>/roles/<rid>",
                endpoint="grant_role",
                methods=["PUT"],
            ),
            Rule(
                "/v3/projects/<pid>/users/<uid>/roles/<rid>",
                endpoint="revoke_role",
                methods=["DELETE"],
            ),
            Rule("/v3/users", endpoint="list_users", methods=["GET"]),
            Rule("/v3/users", endpoint="create_user", methods=["POST"]),
            Rule("/v3/users/<uid>", endpoint="get_user", methods=["GET"]),
            Rule("/v3/users/<uid>", endpoint="update_user", methods=["PATCH"]),
            Rule("/v3/users/<uid>", endpoint="delete_user", methods=["DELETE"]),
            Rule("/v3/users/<uid>/projects", endpoint="user_projects", methods=["GET"]),
            Rule("/v3/roles", endpoint="list_roles", methods=["GET"]),
            Rule("/v3/roles/<rid>", endpoint="get_role", methods=["GET"]),
            Rule("/v3/role_assignments", endpoint="role_assignments", methods=["GET"]),
            Rule("/v3/domains", endpoint="list_domains", methods=["GET"]),
            Rule("/v3/domains/<did>", endpoint="get_domain", methods=["GET"]),
        ]

    def error(self, err: SimError) -> Response:
        title = {
            400: "Bad Request",
            401: "Unauthorized",
            403: "Forbidden",
            404: "Not Found",
            409: "Conflict",
        }.get(err.status, "Error")
        return json_response(
            {"error": {"code": err.status, "message": err.message, "title": title}}, err.status
        )

    @staticmethod
    def _admin(ctx: Ctx | None) -> Ctx:
        if ctx is None or not ctx.is_admin:
            raise forbidden("You are not authorized to perform the requested action.")
        return ctx

    # -- discovery and tokens --------------------------------------------------------------
    def versions(self, request: Request, ctx: Ctx | None) -> Response:
        return json_response({"versions": {"values": [_version_doc(base_url(request))]}}, 300)

    def version(self, request: Request, ctx: Ctx | None) -> Response:
        return json_response({"version": _version_doc(base_url(request))})

    def issue_token(self, request: Request, ctx: Ctx | None) -> Response:
        body = read_json(request).get("auth") or {}
        identity = body.get("identity") or {}
        methods = tuple(identity.get("methods") or ())
        state = self.state
        user: User | None = None
        scope = body.get("scope")
        if "password" in methods:
            spec = (identity.get("password") or {}).get("user") or {}
            try:
                user = state.users.get(spec.get("id", "")) or state.user(spec.get("name", ""))
            except SimError:
                user = None
            if user is None or spec.get("password") != user.password:
                raise SimError(401, "The request you have made requires authentication.")
        elif "application_credential" in methods:
            spec = identity.get("application_credential") or {}
            cred = state.app_credentials.get(spec.get("id", ""))
            if cred is None and spec.get("name"):
                owner = (spec.get("user") or {}).get("id") or ""
                if not owner and (spec.get("user") or {}).get("name"):
                    owner = state.user((spec.get("user") or {})["name"]).id
                cred = next(
                    (c for c in state.app_credentials.values()
                     if c.name == spec["name"] and c.user_id == owner),
                    None,
                )  # fmt: skip
            if cred is None or spec.get("secret") != cred.secret:
                raise SimError(401, "The request you have made requires authentication.")
            if scope:
                raise SimError(401, "Application credentials cannot request a scope.")
            user = state.users.get(cred.user_id)
            if user is None:
                raise SimError(401, "The request you have made requires authentication.")
            token = state.issue_token(user, state.project(cred.project_id), methods, cred)
            return json_response(
                {"token": self._token_body(token, base_url(request))},
                201,
                {"X-Subject-Token": token.id},
            )
        elif "token" in methods:
            old = state.tokens.get(((identity.get("token") or {}).get("id")) or "")
            if old is None:
                raise SimError(401, "The request you have made requires authentication.")
            user = state.users.get(old.user_id)
            if user is None:
                raise SimError(401, "The request you have made requires authentication.")
            if scope is None and old.project_id:
                scope = {"project": {"id": old.project_id}}
        else:
            raise SimError(401, "Unsupported authentication method.")
        project: Project | None = None
        if scope:
            pspec = scope.get("project")
            if not pspec:
                raise SimError(401, "Only project scope is simulated.")
            found = state.projects.get(pspec.get("id", "")) or (
                state.project_by_name(pspec.get("name", "")) if "id" not in pspec else None
            )
            if found is None:
                raise SimError(
                    401, f"Unable to find project {pspec.get('id') or pspec.get('name')}"
                )
            project = found
        token = state.issue_token(user, project, methods)
        return json_response(
            {"token": self._token_body(token, base_url(request))},
            201,
            {"X-Subject-Token": token.id},
        )

    def check_token(self, request: Request, ctx: Ctx | None) -> Response:
        token = self.state.tokens.get(request.headers.get("X-Subject-Token", ""))
        if token is None or self.state.context_for_token(token.id) is None:
            raise SimError(404, "Could not find token.", "NotFound")
        if request.method == "HEAD":
            return empty(200)
        return json_response(
            {"token": self._token_body(token, base_url(request))},
            200,
            {"X-Subject-Token": token.id},
        )

    def revoke_token(self, request: Request, ctx: Ctx | None) -> Response:
        """``DELETE /v3/auth/tokens``: the subject token stops working at once (a user may
        revoke their own tokens; an admin any)."""
        assert ctx is not None
        state = self.state
        with self.cloud.lock:
            token = state.tokens.get(request.headers.get("X-Subject-Token", ""))
            if token is None or state.context_for_token(token.id) is None:
                raise SimError(404, "Could not find token.", "NotFound")
            if token.user_id != ctx.user_id and not ctx.is_admin:
                raise forbidden("You are not authorized to perform the requested action.")
            del state.tokens[token.id]
        return empty(204)

    def _token_body(self, token: Token, base: str) -> dict[str, Any]:
        state = self.state
        user = state.users[token.user_id]
        body: dict[str, Any] = {
            "methods": list(token.methods),
            "user": {
                "id": user.id,
                "name": user.name,
                "domain": dict(DEFAULT_DOMAIN),
                "password_expires_at": None,
            },
            "audit_ids": [token.audit_id],
            "issued_at": token.issued_at.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z",
            "expires_at": token.expires_at.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z",
        }
        if token.project_id is not None:
            project = state.projects[token.project_id]
            body["project"] = {
                "id": project.id,
                "name": project.name,
                "domain": dict(DEFAULT_DOMAIN),
            }
            body["is_domain"] = False
            body["roles"] = [{"id": state.role_ids[r], "name": r} for r in token.roles]
            body["catalog"] = catalog(base, project.id, self.cloud.config.region)
        if token.app_credential is not None:
            body["application_credential"] = {
                "id": token.app_credential.id,
                "name": token.app_credential.name,
                "restricted": True,
            }
        return body

    # -- projects --------------------------------------------------------------------------
    def auth_projects(self, request: Request, ctx: Ctx | None) -> Response:
        assert ctx is not None
        base = base_url(request)
        ids = {pid for (uid, pid) in self.state.assignments if uid == ctx.user_id}
        return json_response(
            {
                "projects": [
                    self.state.projects[p].to_api(base)
                    for p in sorted(ids)
                    if p in self.state.projects
                ]
            }
        )

    def user_projects(self, request: Request, ctx: Ctx | None, uid: str) -> Response:
        assert ctx is not None
        if ctx.user_id != uid:
            self._admin(ctx)
        base = base_url(request)
        ids = {pid for (u, pid) in self.state.assignments if u == uid}
        return json_response(
            {
                "projects": [
                    self.state.projects[p].to_api(base)
                    for p in sorted(ids)
                    if p in self.state.projects
                ]
            }
        )

    def list_projects(self, request: Request, ctx: Ctx | None) -> Response:
        self._admin(ctx)
        args = request.args
        enabled = query_flag(args.get("enabled"))
        tags = set(args.get("tags", "").split(",")) - {""}
        tags_any = set(args.get("tags-any", "").split(",")) - {""}
        out = []
        with self.cloud.lock:
            for p in self.state.projects.values():
                if "name" in args and p.name != args["name"]:
                    continue
                if enabled is not None and p.enabled != enabled:
                    continue
                if tags and not tags <= set(p.tags):
                    continue
                if tags_any and not tags_any & set(p.tags):
                    continue
                out.append(p.to_api(base_url(request)))
        body: dict[str, Any] = {
            "projects": out,
            "links": {"self": request.url, "next": None, "previous": None},
        }
        limit = self.cloud.config.keystone_project_list_limit
        if limit and len(out) > limit:
            body["projects"], body["truncated"] = out[:limit], True
        return json_response(body)

    def get_project(self, request: Request, ctx: Ctx | None, pid: str) -> Response:
        assert ctx is not None
        if pid != ctx.project_id:
            self._admin(ctx)
        if pid not in self.state.projects:
            raise SimError(404, f"Could not find project: {pid}.", "NotFound")
        return json_response({"project": self.state.projects[pid].to_api(base_url(request))})

    def create_project(self, request: Request, ctx: Ctx | None) -> Response:
        ctx = self._admin(ctx)
        spec = dict(read_json(request).get("project") or {})
        extra = {k: v for k, v in spec.items() if k not in _CORE_PROJECT_KEYS}
        project = self.state.create_project(
            spec["name"],
            id=spec.get("id"),
            enabled=bool(spec.get("enabled", True)),
            description=spec.get("description") or "",
            tags=spec.get("tags"),
            properties=extra,
            ctx=ctx,
        )
        return json_response({"project": project.to_api(base_url(request))}, 201)

    def update_project(self, request: Request, ctx: Ctx | None, pid: str) -> Response:
        ctx = self._admin(ctx)
        spec = dict(read_json(request).get("project") or {})
        project = self.state.update_project(pid, ctx=ctx, **spec)
        return json_response({"project": project.to_api(base_url(request))})

    def delete_project(self, request: Request, ctx: Ctx | None, pid: str) -> Response:
        ctx = self._admin(ctx)
        if pid not in self.state.projects:
            raise SimError(404, f"Could not find project: {pid}.", "NotFound")
        self.state.delete_project(pid, ctx=ctx)
        return empty()

    def grant_role(
        self, request: Request, ctx: Ctx | None, pid: str, uid: str, rid: str
    ) -> Response:
        self._admin(ctx)
        self.state.grant(uid, pid, self._role_name(rid))
        return empty()

    def revoke_role(
        self, request: Request, ctx: Ctx | None, pid: str, uid: str, rid: str
    ) -> Response:
        self._admin(ctx)
        self.state.revoke(uid, pid, self._role_name(rid))
        return empty()

    def _role_name(self, rid: str) -> str:
        for name, role_id in self.state.role_ids.items():
            if rid in (name, role_id):
                return name
        raise SimError(404, f"Could not find role: {rid}.", "NotFound")

    # -- users -----------------------------------------------------------------------------
    def list_users(self, request: Request, ctx: Ctx | None) -> Response:
        self._admin(ctx)
        base = base_url(request)
        with self.cloud.lock:
            out = [
                u.to_api(base)
                for u in self.state.users.values()
                if "name" not in request.args or u.name == request.args["name"]
            ]
        return json_response(
            {"users": out, "links": {"self": request.url, "next": None, "previous": None}}
        )

    def get_user(self, request: Request, ctx: Ctx | None, uid: str) -> Response:
        assert ctx is not None
        if uid != ctx.user_id:
            self._admin(ctx)
        if uid not in self.state.users:
            raise SimError(404, f"Could not find user: {uid}.", "NotFound")
        return json_response({"user": self.state.users[uid].to_api(base_url(request))})

    def create_user(self, request: Request, ctx: Ctx | None) -> Response:
        ctx = self._admin(ctx)
        spec = read_json(request).get("user") or {}
        user = self.state.create_user(
            spec["name"],
            id=spec.get("id"),
            email=spec.get("email"),
            password=spec.get("password") or "password",
            enabled=bool(spec.get("enabled", True)),
            default_project_id=spec.get("default_project_id"),
            ctx=ctx,
        )
        return json_response({"user": user.to_api(base_url(request))}, 201)

    def update_user(self, request: Request, ctx: Ctx | None, uid: str) -> Response:
        ctx = self._admin(ctx)
        spec = read_json(request).get("user") or {}
        user = self.state.update_user(uid, ctx=ctx, **spec)
        return json_response({"user": user.to_api(base_url(request))})

    def delete_user(self, request: Request, ctx: Ctx | None, uid: str) -> Response:
        ctx = self._admin(ctx)
        self.state.delete_user(uid, ctx=ctx)
        return empty()

    # -- roles, assignments, domains -------------------------------------------------------
    def _role(self, name: str, rid: str, base: str) -> dict[str, Any]:
        return {
            "id": rid,
            "name": name,
            "domain_id": None,
            "links": {"self": f"{base}/identity/v3/roles/{rid}"},
        }

    def list_roles(self, request: Request, ctx: Ctx | None) -> Response:
        base = base_url(request)
        wanted = request.args.get("name")
        return json_response(
            {
                "roles": [
                    self._role(name, rid, base)
                    for name, rid in self.state.role_ids.items()
                    if wanted is None or name == wanted
                ]
            }
        )

    def get_role(self, request: Request, ctx: Ctx | None, rid: str) -> Response:
        """A role by id; 404 by name, as Keystone (openstacksdk's find_role then lists)."""
        for name, known in self.state.role_ids.items():
            if known == rid:
                return json_response({"role": self._role(name, rid, base_url(request))})
        raise SimError(404, f"Could not find role: {rid}.", "NotFound")

    def role_assignments(self, request: Request, ctx: Ctx | None) -> Response:
        self._admin(ctx)
        args = request.args
        user_f, project_f = args.get("user.id"), args.get("scope.project.id")
        role_f = args.get("role.id")
        names = "include_names" in args
        state = self.state
        base = base_url(request)
        out = []
        with self.cloud.lock:
            if project_f and "effective" in args and project_f not in state.projects:
                # Keystone expands effective roles through the project's parents: 404
                raise SimError(404, f"Could not find project: {project_f}.", "NotFound")
            for (uid, pid), roles in state.assignments.items():
                if (user_f and uid != user_f) or (project_f and pid != project_f):
                    continue
                for role in sorted(roles):
                    if role_f and role_f not in (role, state.role_ids[role]):
                        continue
                    rid = state.role_ids[role]
                    entry: dict[str, Any] = {
                        "user": {"id": uid},
                        "scope": {"project": {"id": pid}},
                        "role": {"id": rid},
                        "links": {
                            "assignment": f"{base}/identity/v3/projects/{pid}/users/{uid}"
                            f"/roles/{rid}"
                        },
                    }
                    if names:
                        entry["user"]["name"] = state.users[uid].name
                        entry["user"]["domain"] = dict(DEFAULT_DOMAIN)
                        entry["scope"]["project"]["name"] = state.projects[pid].name
                        entry["scope"]["project"]["domain"] = dict(DEFAULT_DOMAIN)
                        entry["role"]["name"] = role
                    out.append(entry)
        return json_response(
            {
                "role_assignments": out,
                "links": {"self": request.url, "next": None, "previous": None},
            }
        )

    def list_domains(self, request: Request, ctx: Ctx | None) -> Response:
        return json_response({"domains": [dict(DEFAULT_DOMAIN, enabled=True)]})

    def get_domain(self, request: Request, ctx: Ctx | None, did: str) -> Response:
        if did not in ("default", "Default"):
            raise SimError(404, f"Could not find domain: {did}.", "NotFound")
        return json_response({"domain": dict(DEFAULT_DOMAIN, enabled=True)})
