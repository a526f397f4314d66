"""How a command finds the resource a person names: its full id, a prefix of it that no
other id starts with (as git abbreviates commits), or its name where the cloud has one.

Ids and prefixes are matched against the store; names are looked up in the cloud through
openstacksdk (the clouds.yaml entry of ``--cloud``, else ``OS_CLOUD``). Nothing found exits
1; several candidates exit 2 listing them; a name with no cloud to look it up in exits 1
saying how to name one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Annotated, Any

import typer

from reclaim.cli.common import cloud_or_exit, fail, printable
from reclaim.store import DynamoTimerStore, StoreError

#: Keystone makes every project id a uuid4 in hex: a name (``genomics``) taken for an id
#: would find nothing, or make timers for a project that does not exist.
KEYSTONE_ID = re.compile(r"[0-9a-f]{32}")

#: The resource types the cloud names (a security group rule has no name).
NAMED = ("server", "project", "user", "image")

CloudOpt = Annotated[
    str | None,
    typer.Option(
        "--cloud",
        help="clouds.yaml entry to look names up in (default: OS_CLOUD); ids and prefixes "
        "need no cloud.",
    ),
]

_SHOWN = 10


def _listed(found: list[str]) -> str:
    more = f" and {len(found) - _SHOWN} more" if len(found) > _SHOWN else ""
    return ", ".join(found[:_SHOWN]) + more


def unique_match(given: str, candidates: Iterable[str], what: str) -> str | None:
    """The candidate ``given`` names, as git resolves an abbreviated commit: itself, else the
    one candidate starting with it; None when none does. Several: exits 2 listing them."""
    found = sorted({c for c in candidates if c.startswith(given)})
    if given in found or not found:
        return given if given in found else None
    if len(found) > 1:
        fail(f"{what} id {given!r} is ambiguous, {len(found)} ids start with it: {_listed(found)}")
    return found[0]


def cloud_entry(cloud: str | None) -> str | None:
    """The cloud names are looked up in: ``--cloud``, else ``OS_CLOUD``; None when neither
    is given and no ``OS_AUTH_URL`` names one either."""
    if cloud or os.environ.get("OS_CLOUD"):
        return cloud or os.environ["OS_CLOUD"]
    return "" if os.environ.get("OS_AUTH_URL") else None


def _listing(conn: Any, resource_type: str, name: str) -> Any:
    if resource_type == "server":  # Nova's name filter is a regular expression
        return conn.compute.servers(all_projects=True, name=f"^{re.escape(name)}$")
    if resource_type == "project":
        return conn.identity.projects(name=name)
    if resource_type == "user":
        return conn.identity.users(name=name)
    return conn.image.images(name=name, visibility="all")


def by_name(resource_type: str, name: str, cloud: str | None) -> str | None:
    """The id of the one ``resource_type`` the cloud calls ``name``; None when there is none
    (or the type has no names). Several: exits 2 listing them; no cloud configured: exits 1
    saying how to configure one."""
    if resource_type not in NAMED:
        return None
    entry = cloud_entry(cloud)
    if entry is None:
        fail(
            f"no {resource_type} {printable(name)}: no id starts with it; to look it up by name "
            "set OS_CLOUD to a clouds.yaml entry or give --cloud",
            code=1,
        )
    conn = cloud_or_exit(entry or None)
    try:
        found = sorted(
            {
                (str(x.id), str(x.name))
                for x in _listing(conn, resource_type, name)
                if x.name == name
            }
        )
    except Exception as exc:
        reason = str(exc).replace("\n", " ")
        fail(f"cloud {entry or 'OS_AUTH_URL'!r}: looking up {resource_type} {name!r}: {reason}")
    if len(found) > 1:
        fail(
            f"{resource_type} name '{printable(name)}' is ambiguous, {len(found)} have it: "
            + _listed([rid for rid, _ in found])
        )
    return found[0][0] if found else None


def resource_or_exit(
    store: DynamoTimerStore, resource_type: str, given: str, cloud: str | None = None
) -> str:
    """The id of the resource with timers that ``given`` names: its id, a unique prefix of
    it, or its name in the cloud (see the module's docstring)."""
    try:
        found = given if store.timers_for(resource_type, given) else None
        if found is None:
            found = unique_match(given, store.ids_starting(resource_type, given), resource_type)
            if found is not None and not store.timers_for(resource_type, found):
                found = None  # its item is there but does not decode
        unreadable = store.unreadable()
    except StoreError as exc:
        fail(f"store: {exc}")
    if found is not None:
        return found
    if unreadable:
        key = printable(unreadable[0].key)
        fail(
            f"{key}: stored item unreadable ({unreadable[0].reason}); "
            f"see reclaim store quarantine show {key}",
            code=1,
        )
    if resource_type in NAMED and cloud_entry(cloud) is not None:
        named = by_name(resource_type, given, cloud)
        if named is not None:
            try:
                if store.timers_for(resource_type, named):
                    return named
            except StoreError as exc:
                fail(f"store: {exc}")
            fail(f"no timer for {resource_type} {printable(given)} ({named})", code=1)
        fail(
            f"no timer for {resource_type} {printable(given)}: no id starts with it, nor is it "
            f"a {resource_type} name in the cloud",
            code=1,
        )
    hint = (
        " (to find it by name, set OS_CLOUD to a clouds.yaml entry or give --cloud)"
        if resource_type in NAMED
        else ""
    )
    fail(f"no timer for {resource_type} {printable(given)}{hint}", code=1)


def project_or_exit(store: DynamoTimerStore, given: str, cloud: str | None = None) -> str:
    """The project ``given`` names: a Keystone id as it is; else the one project of the
    store's timers whose id starts with it; else, when a cloud is configured, the project
    Keystone knows by that name. Nothing: exits 1 saying how to find the id."""
    if KEYSTONE_ID.fullmatch(given):
        return given
    try:
        known = {t.project_id for t in store.pending() if t.project_id}
        known.update(store.ids_starting("project", given))
    except StoreError as exc:
        fail(f"store: {exc}")
    found = unique_match(given, known, "project")
    if found is not None:
        return found
    entry = cloud_entry(cloud)
    if entry is None:
        fail(
            f"no project {given!r}: no timer's project id starts with it; give the id "
            f"(`openstack project show {given} -f value -c id`), or set OS_CLOUD to a "
            "clouds.yaml entry or give --cloud to look the name up in Keystone",
            code=1,
        )
    named = by_name("project", given, cloud)
    if named is None:
        fail(
            f"no project {given!r}: no timer's project id starts with it, nor is it a "
            f"project name in Keystone (cloud {entry or 'OS_AUTH_URL'!r})",
            code=1,
        )
    return named
