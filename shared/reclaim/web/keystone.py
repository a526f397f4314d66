"""Sign-in against Keystone: who someone is, which projects they may see, until when.

A password (user name, domain) or an application credential (id and secret) is checked by
Keystone itself, through keystoneauth1; reclaim keeps no password and no token. What comes
back is an :class:`Identity`: the user, each project they hold a role on with those roles,
whether they are an operator, and the token's ``expires_at``, after which no session made
from it may be used.

How the projects are found. A password gives a token (unscoped, or scoped to the user's
default project: no scope is asked for); ``GET /v3/auth/projects``
lists the projects the user has any role on (Keystone's own answer, no admin right
needed), and one project-scoped token per project (a rescope: Keystone keeps the first
token's expiry) tells the roles held there, implied roles included. ``role_assignments``
would need an admin token, so it is not used. An application credential is always scoped
to its one project: that project and its roles are all it grants, and roles the credential
was created without are not seen.

Operators: the ``web.operator_role`` role (``admin``) on any project. Keystone's admin role
is global in effect on most clouds, which is why one assignment is enough.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

#: Projects looked at per sign-in; past this the rest are left out (and logged).
MAX_PROJECTS = 50
#: Seconds one Keystone request may take.
TIMEOUT = 10.0

log = logging.getLogger(__name__)


class SignInRefused(Exception):
    """Keystone did not accept the credentials (or they give no project to show)."""


class KeystoneUnavailable(Exception):
    """Keystone could not be asked (down, unreachable, or an unexpected answer)."""


@dataclass(frozen=True)
class ProjectAccess:
    """One project someone may see, and the roles they hold on it."""

    id: str
    name: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class Identity:
    """A signed-in person as Keystone describes them. ``expires_at`` is the token's."""

    user_id: str
    user_name: str
    projects: tuple[ProjectAccess, ...]
    operator: bool
    expires_at: datetime
    method: str = "password"
    left_out: int = field(default=0, compare=False)

    def project_ids(self) -> frozenset[str]:
        return frozenset(p.id for p in self.projects)


def v3_url(auth_url: str) -> str:
    """Keystone's v3 address from an auth URL with or without the ``/v3`` (pure)."""
    url = auth_url.rstrip("/")
    return url if url.endswith("/v3") else f"{url}/v3"


def _aware(value: datetime | None) -> datetime:
    if value is None:
        raise KeystoneUnavailable("Keystone's token carries no expires_at")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Keystone:
    """Checks credentials against one Keystone (``auth_url``) and describes the person.

    ``member_roles``: the roles that show a project (empty: any role); ``operator_role``:
    the role that makes an operator. ``verify``: TLS verification (a CA bundle path, or
    False for a test Keystone only).
    """

    def __init__(
        self,
        auth_url: str,
        *,
        user_domain: str = "Default",
        member_roles: Sequence[str] = (),
        operator_role: str = "admin",
        verify: bool | str = True,
        timeout: float = TIMEOUT,
    ) -> None:
        self.auth_url = v3_url(auth_url)
        self.user_domain = user_domain
        self.member_roles = frozenset(member_roles)
        self.operator_role = operator_role
        self.verify = verify
        self.timeout = timeout

    def _session(self, auth: Any) -> ks_session.Session:
        return ks_session.Session(auth=auth, verify=self.verify, timeout=self.timeout)

    def _access(self, auth: Any) -> Any:
        """The AccessInfo for ``auth``; Keystone's refusals and failures told apart."""
        try:
            return auth.get_access(self._session(auth))
        except ks_exc.Unauthorized as exc:
            raise SignInRefused("Keystone did not accept these credentials") from exc
        except (ks_exc.NotFound, ks_exc.BadRequest) as exc:
            raise SignInRefused("Keystone did not accept these credentials") from exc
        except ks_exc.ClientException as exc:
            raise KeystoneUnavailable(f"Keystone at {self.auth_url}: {exc}") from exc

    def password(self, user_name: str, password: str, domain: str | None = None) -> Identity:
        """Sign in with a password: the user's projects and roles, from an unscoped token."""
        if not user_name or not password:
            raise SignInRefused("a user name and a password are needed")
        auth = v3.Password(
            auth_url=self.auth_url,
            username=user_name,
            password=password,
            user_domain_name=domain or self.user_domain,
        )
        access = self._access(auth)
        expires = _aware(access.expires)
        listed = self._projects(auth)
        projects: list[ProjectAccess] = []
        for project in listed[:MAX_PROJECTS]:
            roles = self._roles_on(access.auth_token, project["id"])
            if roles is not None:
                projects.append(ProjectAccess(project["id"], project.get("name", ""), roles))
        if len(listed) > MAX_PROJECTS:
            log.warning(
                "sign-in of %s: %d projects, the first %d shown",
                access.user_id,
                len(listed),
                MAX_PROJECTS,
            )
        return self._identity(access, projects, expires, "password", len(listed) - MAX_PROJECTS)

    def application_credential(self, credential_id: str, secret: str) -> Identity:
        """Sign in with an application credential: its one project, with its roles."""
        if not credential_id or not secret:
            raise SignInRefused("an application credential id and secret are needed")
        auth = v3.ApplicationCredential(
            auth_url=self.auth_url,
            application_credential_id=credential_id,
            application_credential_secret=secret,
        )
        access = self._access(auth)
        projects = []
        if access.project_id:
            projects.append(
                ProjectAccess(
                    access.project_id,
                    access.project_name or "",
                    tuple(sorted(access.role_names or ())),
                )
            )
        return self._identity(access, projects, _aware(access.expires), "application credential")

    def _identity(
        self,
        access: Any,
        projects: Sequence[ProjectAccess],
        expires: datetime,
        method: str,
        left_out: int = 0,
    ) -> Identity:
        operator = any(self.operator_role in p.roles for p in projects)
        shown = tuple(
            sorted(
                (p for p in projects if self._shows(p.roles) or operator),
                key=lambda p: (p.name, p.id),
            )
        )
        return Identity(
            user_id=access.user_id,
            user_name=access.username or access.user_id,
            projects=shown,
            operator=operator,
            expires_at=expires,
            method=method,
            left_out=max(left_out, 0),
        )

    def _shows(self, roles: Sequence[str]) -> bool:
        return bool(roles) and (not self.member_roles or bool(self.member_roles & set(roles)))

    def _projects(self, auth: Any) -> list[Mapping[str, Any]]:
        """``GET /v3/auth/projects`` with the unscoped token: enabled projects only."""
        try:
            response = self._session(auth).get(f"{self.auth_url}/auth/projects")
            body = response.json()
        except ks_exc.ClientException as exc:
            raise KeystoneUnavailable(f"Keystone at {self.auth_url}: {exc}") from exc
        except ValueError as exc:
            raise KeystoneUnavailable(f"Keystone at {self.auth_url}: not JSON") from exc
        projects = body.get("projects") if isinstance(body, dict) else None
        if not isinstance(projects, list):
            raise KeystoneUnavailable(f"Keystone at {self.auth_url}: no project list")
        return sorted(
            (
                p
                for p in projects
                if isinstance(p, dict) and isinstance(p.get("id"), str) and p.get("enabled", True)
            ),
            key=lambda p: (str(p.get("name", "")), p["id"]),
        )

    def _roles_on(self, token: str, project_id: str) -> tuple[str, ...] | None:
        """The roles held on ``project_id``, from a token rescoped to it (None: refused)."""
        auth = v3.Token(auth_url=self.auth_url, token=token, project_id=project_id)
        try:
            access = auth.get_access(self._session(auth))
        except ks_exc.Unauthorized:
            return None  # disabled since the listing, or the role went: not shown
        except ks_exc.ClientException as exc:
            raise KeystoneUnavailable(f"Keystone at {self.auth_url}: {exc}") from exc
        return tuple(sorted(access.role_names or ()))


def auth_url_of(cloud: str) -> tuple[str, bool | str]:
    """The Keystone auth URL of a ``clouds.yaml`` entry (``""`` when it names none) and how
    to verify its TLS certificate (the entry's ``cacert``, else its ``verify``)."""
    import openstack.config

    try:
        region = openstack.config.OpenStackConfig().get_one(cloud or None)
    except Exception:
        return "", True
    url = region.config.get("auth", {}).get("auth_url", "")
    cacert = region.config.get("cacert")
    verify: bool | str = str(cacert) if cacert else bool(region.config.get("verify", True))
    return (str(url) if url else ""), verify


def expired(expires_at: datetime, now: datetime | None = None) -> bool:
    """Whether a token (and every session made from it) has expired at ``now`` (pure when
    ``now`` is given)."""
    return (now or datetime.now(UTC)) >= expires_at
