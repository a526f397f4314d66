"""Who gets a notice: its known addresses, users' e-mail from Keystone, project members.

A notice for a user goes to that user; when the user has no address (or is gone) it goes to
the project's members. Project-wide notices go to the project's members (optionally only
those holding ``member_roles``) and to the addresses the notice carries (allocation
contacts). Operator alerts go to the operators. Nobody found: the fallback contact.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from reclaim.notices import NoticeMessage


@dataclass(frozen=True)
class Person:
    """One recipient: an address, and a name and user id when Keystone gave them."""

    address: str
    name: str = ""
    user_id: str | None = None
    why: str = ""


class DirectoryError(RuntimeError):
    """The directory could not be read now (retry later)."""


class AddressBook(Protocol):
    """Resolves a notice to the people who should read it."""

    def resolve(self, notice: NoticeMessage) -> list[Person]: ...


class Directory(Protocol):
    """The two reads address resolution needs (Keystone, or a fake)."""

    def user(self, user_id: str) -> tuple[str, str] | None:
        """(name, email) of a user; None if there is no such user."""
        ...

    def members(self, project_id: str, roles: tuple[str, ...]) -> list[str]:
        """Ids of users holding a role (any of ``roles``; all if empty) on a project."""
        ...


class KeystoneDirectory:
    """:class:`Directory` on an openstacksdk connection with identity admin rights."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def user(self, user_id: str) -> tuple[str, str] | None:
        from openstack import exceptions

        try:
            u = self.conn.identity.get_user(user_id)
        except exceptions.NotFoundException:
            return None
        except Exception as exc:
            raise DirectoryError(f"get_user {user_id}: {exc}") from exc
        return (str(u.name or ""), str(getattr(u, "email", None) or ""))

    def members(self, project_id: str, roles: tuple[str, ...]) -> list[str]:
        try:
            out = []
            for a in self.conn.identity.role_assignments(
                scope_project_id=project_id, include_names=True, effective=True
            ):
                user = a.user or {}
                role = (a.role or {}).get("name", "")
                if user.get("id") and (not roles or role in roles):
                    out.append(str(user["id"]))
        except Exception as exc:
            raise DirectoryError(f"role assignments of {project_id}: {exc}") from exc
        return sorted(set(out))


class CachedDirectory:
    """A :class:`Directory` that remembers answers for ``ttl`` seconds (a notice storm
    about one project reads Keystone once)."""

    def __init__(self, inner: Directory, ttl: float = 300.0) -> None:
        self.inner = inner
        self.ttl = ttl
        self._users: dict[str, tuple[float, tuple[str, str] | None]] = {}
        self._members: dict[tuple[str, tuple[str, ...]], tuple[float, list[str]]] = {}
        self._lock = threading.Lock()

    def user(self, user_id: str) -> tuple[str, str] | None:
        now = time.monotonic()
        with self._lock:
            hit = self._users.get(user_id)
        if hit and now - hit[0] < self.ttl:
            return hit[1]
        value = self.inner.user(user_id)
        with self._lock:
            self._users[user_id] = (now, value)
        return value

    def members(self, project_id: str, roles: tuple[str, ...]) -> list[str]:
        now = time.monotonic()
        key = (project_id, roles)
        with self._lock:
            hit = self._members.get(key)
        if hit and now - hit[0] < self.ttl:
            return hit[1]
        value = self.inner.members(project_id, roles)
        with self._lock:
            self._members[key] = (now, value)
        return value


class DirectoryAddresses:
    """:class:`AddressBook` over a :class:`Directory`."""

    def __init__(
        self,
        directory: Directory,
        *,
        fallback: str = "",
        operators: tuple[str, ...] = (),
        member_roles: tuple[str, ...] = (),
    ) -> None:
        self.directory = directory
        self.fallback = fallback
        self.operators = operators
        self.member_roles = member_roles

    def resolve(self, notice: NoticeMessage) -> list[Person]:
        """The people for ``notice``, one per address, in a stable order."""
        r = notice.recipients
        if notice.operator or r.operators:
            people = [Person(a, why="operator") for a in self.operators]
            return people or self._fallback("no operator address configured")
        people = [Person(a, why="named in the notice") for a in r.addresses]
        users = [p for uid in r.user_ids if (p := self._user(uid, "user")) is not None]
        people += users
        project_wide = notice.audience != "owner" or not users
        if project_wide and r.project_id:
            for uid in self.directory.members(r.project_id, self.member_roles):
                p = self._user(uid, f"member of project {r.project_id}")
                if p is not None:
                    people.append(p)
        seen: set[str] = set()
        unique = []
        for p in people:
            if p.address.lower() not in seen:
                seen.add(p.address.lower())
                unique.append(p)
        return unique or self._fallback("no address found")

    def _user(self, user_id: str, why: str) -> Person | None:
        found = self.directory.user(user_id)
        if found is None or not found[1]:
            return None
        return Person(found[1], found[0], user_id, why)

    def _fallback(self, why: str) -> list[Person]:
        return [Person(self.fallback, why=f"fallback contact ({why})")] if self.fallback else []
