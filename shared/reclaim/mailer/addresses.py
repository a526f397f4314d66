"""Who gets a notice: its known addresses, users' e-mail from Keystone, project members.

A notice for a user goes to that user; when the user has no address (or is gone) it goes to
the project's members. Project-wide notices go to the project's members (optionally only
those holding ``member_roles``) and to the addresses the notice carries (allocation
contacts). Operator alerts go to the operators. Nobody found: the fallback contact, else the
operators. A project Keystone no longer has (its role assignments answer 404) cannot be
resolved: its notices go to the fallback contact and the operators, never back to the queue.

Every address is checked before a mail is built (:func:`check_address`): one RFC 5322
addr-spec, no CR/LF, no display name; one that needs SMTPUTF8 says so.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from email_validator import EmailNotValidError, validate_email

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


class BadAddress(ValueError):
    """An address no mail can be sent to as it is written."""


@dataclass(frozen=True)
class Address:
    """A checked address: what to put in the envelope and ``To``, and whether the mail needs
    the server's SMTPUTF8 (a non-ASCII local part)."""

    address: str
    smtputf8: bool = False


def check_address(address: str) -> Address:
    """``address`` as one RFC 5322 addr-spec (email-validator, no DNS lookup). Pure.

    Refused (:class:`BadAddress`): CR or LF, a display name, a list (``a@x, b@y``), anything
    that is not one address. An internationalised domain is sent in its ASCII (IDNA) form;
    a non-ASCII local part needs SMTPUTF8.
    """
    if any(c in address for c in "\r\n") or address != address.strip():
        raise BadAddress("carriage return, line feed or surrounding blanks in the address")
    try:
        checked = validate_email(
            address, check_deliverability=False, globally_deliverable=False, allow_smtputf8=True
        )
    except EmailNotValidError as exc:
        raise BadAddress(str(exc)) from exc
    if checked.ascii_email:
        return Address(checked.ascii_email)
    return Address(checked.normalized, smtputf8=True)


class AddressBook(Protocol):
    """Resolves a notice to the people who should read it, and names its project."""

    def resolve(self, notice: NoticeMessage) -> list[Person]: ...

    def project_name(self, project_id: str) -> str:
        """The project's name; empty when unknown."""
        ...


class Directory(Protocol):
    """The two reads address resolution needs (Keystone, or a fake)."""

    def user(self, user_id: str) -> tuple[str, str] | None:
        """(name, email) of a user; None if there is no such user."""
        ...

    def members(self, project_id: str, roles: tuple[str, ...]) -> list[str] | None:
        """Ids of users holding a role (any of ``roles``; all if empty) on a project; None
        if there is no such project."""
        ...

    def project(self, project_id: str) -> str | None:
        """The name of a project; None if there is no such project."""
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

    def members(self, project_id: str, roles: tuple[str, ...]) -> list[str] | None:
        from openstack import exceptions

        try:
            out = []
            for a in self.conn.identity.role_assignments(
                scope_project_id=project_id, include_names=True, effective=True
            ):
                user = a.user or {}
                role = (a.role or {}).get("name", "")
                if user.get("id") and (not roles or role in roles):
                    out.append(str(user["id"]))
        except exceptions.NotFoundException:
            return None  # Keystone has no such project (any more)
        except Exception as exc:
            raise DirectoryError(f"role assignments of {project_id}: {exc}") from exc
        return sorted(set(out))

    def project(self, project_id: str) -> str | None:
        from openstack import exceptions

        try:
            p = self.conn.identity.get_project(project_id)
        except exceptions.NotFoundException:
            return None
        except Exception as exc:
            raise DirectoryError(f"get_project {project_id}: {exc}") from exc
        return str(p.name or "") or None


class CachedDirectory:
    """A :class:`Directory` that remembers answers for ``ttl`` seconds (a notice storm
    about one project reads Keystone once)."""

    def __init__(self, inner: Directory, ttl: float = 300.0) -> None:
        self.inner = inner
        self.ttl = ttl
        self._users: dict[str, tuple[float, tuple[str, str] | None]] = {}
        self._members: dict[tuple[str, tuple[str, ...]], tuple[float, list[str] | None]] = {}
        self._projects: dict[str, tuple[float, str | None]] = {}
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

    def members(self, project_id: str, roles: tuple[str, ...]) -> list[str] | None:
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

    def project(self, project_id: str) -> str | None:
        now = time.monotonic()
        with self._lock:
            hit = self._projects.get(project_id)
        if hit and now - hit[0] < self.ttl:
            return hit[1]
        value = self.inner.project(project_id)
        with self._lock:
            self._projects[project_id] = (now, value)
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
            members = self.directory.members(r.project_id, self.member_roles)
            if members is None:
                gone = f"project {r.project_id} no longer exists in Keystone"
                return _unique(people + self._fallback(gone) + self._operators(gone))
            for uid in members:
                p = self._user(uid, f"member of project {r.project_id}")
                if p is not None:
                    people.append(p)
        return _unique(people) or self._fallback("no address found")

    def project_name(self, project_id: str) -> str:
        """The name Keystone gives ``project_id``; empty if it has none or cannot tell now
        (the mail then names the project by its id)."""
        try:
            return self.directory.project(project_id) or ""
        except DirectoryError:
            return ""

    def _user(self, user_id: str, why: str) -> Person | None:
        found = self.directory.user(user_id)
        if found is None or not found[1]:
            return None
        return Person(found[1], found[0], user_id, why)

    def _operators(self, why: str) -> list[Person]:
        return [Person(a, why=f"operator ({why})") for a in self.operators]

    def _fallback(self, why: str) -> list[Person]:
        """The fallback contact; without one, the operators."""
        if self.fallback:
            return [Person(self.fallback, why=f"fallback contact ({why})")]
        return self._operators(f"{why}; no fallback contact configured")


def _unique(people: list[Person]) -> list[Person]:
    """``people`` without repeated addresses (the first of each kept)."""
    seen: set[str] = set()
    out = []
    for p in people:
        if p.address.lower() not in seen:
            seen.add(p.address.lower())
            out.append(p)
    return out
