"""Fidelity of the simulated cloud: the requests reclaim makes, and those of the README's
walk-through, sent to the real services and to the simulation, their answers compared.

Each probe records, per request, what a client sees: the status code, the keys of the
resource it answers with (the keys reclaim reads among them), and for the actions that
change state, the state right after the request and the state it settles in. The
comparison is a table (request, aspect, real, sim, same?); ``docs/sim-fidelity.md`` lists
the differences the simulation keeps, with the reason, and ``tests/openstack/
test_fidelity.py`` holds the table to that list.

``python -m tests.openstack.fidelity [--dir D] [--out build/fidelity.md]`` prints the
table for a person: it uses the real cloud running from ``D`` (``python -m
tests.openstack.harness up``), or starts one and stops it afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "sim-fidelity.md"
OUT = ROOT / "build" / "fidelity.md"
PASSWORD = "fidelity-user-pw"
MISSING = "00000000-0000-4000-8000-000000000000"
MISSING_HEX = "0" * 32
PUBLIC_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBmaI3ts3RkCzxnUIRnbbMBq4fVXeYNzJ9zE0yZ+1jHd fidelity"
)
#: the compute microversion reclaim's server read sends (reclaim.sweeper.cloud)
SERVER_MV = "2.9"
#: how long a state change may take on the real services (a loaded machine)
SETTLE = 300.0

Value = str | frozenset[str]
#: the "state after" of a change the service had finished before the first read
RACED = "settled before the first read"


@dataclass
class Answer:
    """One response as a client sees it."""

    status: int
    body: Any
    headers: dict[str, str]

    def keys(self, *path: str | int) -> frozenset[str]:
        """The keys of the object at ``path`` in the body (empty when it is not there)."""
        node: Any = self.body
        for step in path:
            try:
                node = node[step]
            except (KeyError, IndexError, TypeError):
                return frozenset()
        return frozenset(node) if isinstance(node, dict) else frozenset()


@dataclass
class Target:
    """One cloud to probe: an administrator, and a member of a fresh project."""

    name: str
    auth_url: str
    region: str
    admin: Any
    flavor: str
    image: str
    #: filled by :func:`prepare`
    project_id: str = ""
    user_id: str = ""
    tag: str = ""
    member: Any = None
    seen: dict[tuple[str, str], Value] = field(default_factory=dict)
    request_ids: list[bool] = field(default_factory=list)

    def connect(self, user: str, project: str) -> Any:
        import openstack.connection

        return openstack.connection.Connection(
            auth={
                "auth_url": self.auth_url,
                "username": user,
                "password": PASSWORD,
                "project_name": project,
                "user_domain_name": "Default",
                "project_domain_name": "Default",
            },
            region_name=self.region,
            interface="public",
            identity_api_version="3",
        )

    def call(
        self,
        proxy: Any,
        method: str,
        path: str,
        *,
        json: Any = None,
        microversion: str | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Answer:
        """A request through an SDK proxy (its session, endpoint and token), never raising."""
        kwargs: dict[str, Any] = {"raise_exc": False, "headers": dict(headers or {})}
        if json is not None:
            kwargs["json"] = json
        if microversion is not None:
            kwargs["microversion"] = microversion
        if params is not None:
            kwargs["params"] = params
        response = proxy.request(path, method, **kwargs)
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = response.text[:200]
        heads = {k.lower(): v for k, v in response.headers.items()}
        self.request_ids.append("x-openstack-request-id" in heads)
        return Answer(response.status_code, body, heads)

    def record(self, request: str, aspect: str, value: Value) -> None:
        self.seen[(request, aspect)] = value

    def answer(
        self, request: str, answer: Answer, *keys_at: str | int, keys: bool = True
    ) -> Answer:
        """Record the status, and the keys of the object at ``keys_at`` (a success) or of
        the error body (a failure: ``itemNotFound``, ``NeutronError``...)."""
        self.record(request, "status", str(answer.status))
        if answer.status >= 400:
            self.record(request, "keys", answer.keys())
        elif keys:
            self.record(request, "keys", answer.keys(*keys_at))
        return answer


def public_key() -> str:
    """A fresh ed25519 public key in OpenSSH form (its private half is never kept)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


# -- setting a cloud up --------------------------------------------------------------------
def prepare(t: Target, tag: str) -> None:
    """A project with a member user, as the tests make them on both clouds."""
    a = t.admin
    project = a.identity.create_project(name=f"fid-{tag}", domain_id="default")
    user = a.identity.create_user(
        name=f"fid-user-{tag}", password=PASSWORD, domain_id="default", email="fid@example.org"
    )
    member = a.identity.find_role("member", ignore_missing=False)
    a.identity.assign_project_role_to_user(project, user, member)
    t.project_id, t.user_id, t.tag = str(project.id), str(user.id), tag
    t.member = t.connect(user.name, project.name)


def wait(
    read: Callable[[], tuple[str, ...] | None], done: Callable[[tuple[str, ...] | None], bool]
) -> list[tuple[str, ...] | None]:
    """Read a resource's state as fast as the service answers until ``done``: the distinct
    states seen, in order (the first is the state right after the request)."""
    seen: list[tuple[str, ...] | None] = []

    def settled() -> bool:
        state = read()
        if not seen or seen[-1] != state:
            seen.append(state)
        return done(state)

    wait_for(settled, SETTLE, 0.05)
    return seen


def _state(value: tuple[str, ...] | None, coarse: bool = False) -> str:
    if value is None:
        return "gone (404)"
    if coarse and len(value) > 1:  # Nova's task states follow each other at their own pace
        if value[0] == "BUILD":
            # a building server's task state goes scheduling, none (nova-compute takes it),
            # networking, spawning: a read right after the request may see any of them
            return "BUILD"
        return f"{value[0]}, task state set" if value[1] else f"{value[0]}, no task state"
    return "/".join(v or "-" for v in value)


def transition(
    t: Target, request: str, seen: list[tuple[str, ...] | None], *, after: bool = True
) -> None:
    """Record the state read right after the request (coarsely: which task state shows
    then depends on the machine's pace) and the one it settled in."""
    if after:
        # a service quicker than the first read shows no state in between: that says
        # nothing of the simulation's, and compares as the same (see compare)
        t.record(request, "state after", _state(seen[0], coarse=True) if len(seen) > 1 else RACED)
    t.record(request, "settles in", _state(seen[-1]))


# -- the probes ----------------------------------------------------------------------------
def probe_identity(t: Target) -> None:
    a, p, u = t.admin, t.project_id, t.user_id
    idn = a.identity
    # sweeper project(), mailer get_project, reconcile project_pages(one)
    t.answer("GET /v3/projects/{id}", t.call(idn, "GET", f"/projects/{p}"), "project")
    t.answer("GET /v3/projects/{missing}", t.call(idn, "GET", f"/projects/{MISSING_HEX}"))
    # reconcile project_pages()
    listing = t.answer("GET /v3/projects?limit", t.call(idn, "GET", "/projects?limit=1000"))
    t.record("GET /v3/projects?limit", "page keys", listing.keys())
    # the allocation end an operator sets (an extra property, read back at the top level)
    patch = {"project": {"allocation_end": "2026-01-31"}}
    t.answer(
        "PATCH /v3/projects/{id} (property)",
        t.call(idn, "PATCH", f"/projects/{p}", json=patch),
        "project",
    )
    got = t.call(idn, "GET", f"/projects/{p}")
    t.record(
        "PATCH /v3/projects/{id} (property)",
        "read back",
        str((got.body or {}).get("project", {}).get("allocation_end")),
    )
    # sweeper user_exists(), mailer user()
    t.answer("GET /v3/users/{id}", t.call(idn, "GET", f"/users/{u}"), "user")
    t.answer("GET /v3/users/{missing}", t.call(idn, "GET", f"/users/{MISSING_HEX}"))
    # sweeper _has_role
    q = f"/role_assignments?user.id={u}&scope.project.id={p}"
    got = t.answer("GET /v3/role_assignments?user.id&scope.project.id", t.call(idn, "GET", q))
    t.record(
        "GET /v3/role_assignments?user.id&scope.project.id",
        "assignment keys",
        got.keys("role_assignments", 0),
    )
    # mailer members()
    q = f"/role_assignments?scope.project.id={p}&include_names=true&effective=true"
    got = t.answer("GET /v3/role_assignments?include_names&effective", t.call(idn, "GET", q))
    r = "GET /v3/role_assignments?include_names&effective"
    t.record(r, "assignment keys", got.keys("role_assignments", 0))
    t.record(r, "user keys", got.keys("role_assignments", 0, "user"))
    t.record(r, "role keys", got.keys("role_assignments", 0, "role"))
    q = f"/role_assignments?scope.project.id={MISSING_HEX}&include_names=true&effective=true"
    got = t.call(idn, "GET", q)
    r = "GET /v3/role_assignments (missing project)"
    t.record(r, "status", str(got.status))
    t.record(r, "assignments", str(len((got.body or {}).get("role_assignments", []))))
    # sweeper _grant: find_role, then assign and unassign
    roles = t.answer("GET /v3/roles?name=member", t.call(idn, "GET", "/roles?name=member"))
    role = roles.body["roles"][0]["id"]
    other = a.identity.create_user(name=f"fid-cleaner-{uuid.uuid4().hex[:6]}", domain_id="default")
    path = f"/projects/{p}/users/{other.id}/roles/{role}"
    t.answer("PUT /v3/projects/{p}/users/{u}/roles/{r}", t.call(idn, "PUT", path), keys=False)
    t.answer("DELETE /v3/projects/{p}/users/{u}/roles/{r}", t.call(idn, "DELETE", path), keys=False)
    # a token revoked (openstack token revoke): Keystone no longer knows it
    member_token = t.member.session.get_token()
    revoke = {"X-Subject-Token": member_token}
    t.answer(
        "DELETE /v3/auth/tokens", t.call(idn, "DELETE", "/auth/tokens", headers=revoke), keys=False
    )
    r = "GET /v3/auth/tokens (revoked)"
    t.answer(r, t.call(idn, "GET", "/auth/tokens", headers=revoke), keys=False)
    t.member = t.connect(f"fid-user-{t.tag}", f"fid-{t.tag}")
    # the catalog: which services reclaim finds (has_service)
    catalog = a.session.auth.get_access(a.session).service_catalog.catalog
    t.record(
        "token catalog",
        "service types",
        frozenset(
            str(s["type"])
            for s in catalog
            if s["type"]
            in (
                "identity",
                "compute",
                "image",
                "network",
                "block-storage",
                "volumev3",
                "object-store",
            )
        ),
    )


def probe_images(t: Target) -> str:
    """Glance: what the image rules read. Returns an image of the project (shared)."""
    a, m, p = t.admin, t.member, t.project_id
    img = m.image.create_image(
        name=f"fid-img-{p[:6]}", data=b"x" * 64, disk_format="raw", container_format="bare"
    )
    m.image.update_image(img, visibility="shared")
    a.image.add_member(img, member_id=t.admin.current_project_id)
    im = a.image
    t.answer("GET /v2/images/{id}", t.call(im, "GET", f"/images/{img.id}"))
    t.answer("GET /v2/images/{missing}", t.call(im, "GET", f"/images/{MISSING}"))
    for vis in ("shared", "community", "public"):
        r = f"GET /v2/images?visibility={vis}&os_hidden&owner"
        got = t.answer(r, t.call(im, "GET", f"/images?visibility={vis}&os_hidden=false&owner={p}"))
        t.record(r, "found", str(len((got.body or {}).get("images", []))))
        t.record(r, "image keys", got.keys("images", 0))
    r = "GET /v2/images?visibility=all&os_hidden&limit"
    got = t.answer(r, t.call(im, "GET", "/images?visibility=all&os_hidden=false&limit=1000"))
    r = "GET /v2/images/{id}/members"
    got = t.answer(r, t.call(im, "GET", f"/images/{img.id}/members"))
    t.record(r, "member keys", got.keys("members", 0))
    # what a client may call on an image: deactivate, reactivate, tags
    for r, method, path in (
        ("POST /v2/images/{id}/actions/deactivate", "POST", f"/images/{img.id}/actions/deactivate"),
        ("POST /v2/images/{id}/actions/reactivate", "POST", f"/images/{img.id}/actions/reactivate"),
        ("PUT /v2/images/{id}/tags/{tag}", "PUT", f"/images/{img.id}/tags/fidelity"),
        ("DELETE /v2/images/{id}/tags/{tag}", "DELETE", f"/images/{img.id}/tags/fidelity"),
    ):
        t.answer(r, t.call(im, method, path), keys=False)
    # the owner rules' delete of an image nobody uses
    r = "DELETE /v2/images/{id}"
    t.answer(r, t.call(im, "DELETE", f"/images/{img.id}"), keys=False)
    t.record(r, "read after", str(t.call(im, "GET", f"/images/{img.id}").status))
    return str(img.id)


def _server_state(t: Target, sid: str) -> Callable[[], tuple[str, ...] | None]:
    def read() -> tuple[str, ...] | None:
        got = t.call(t.admin.compute, "GET", f"/servers/{sid}", microversion=SERVER_MV)
        if got.status == 404:
            return None
        s = got.body["server"]
        return (s["status"], s.get("OS-EXT-STS:task_state") or "")

    return read


def _settled(state: tuple[str, ...] | None) -> bool:
    return state is None or (state[1] == "" and state[0] not in ("BUILD",))


def probe_servers(t: Target, image_id: str) -> None:
    a, m, p = t.admin, t.member, t.project_id
    cp = a.compute
    # the walk-through: openstack server create --flavor F --image I --nic none vm1
    spec = {
        "server": {
            "name": "fid-vm1",
            "imageRef": t.image,
            "flavorRef": t.flavor,
            "networks": "none",
            "metadata": {"purpose": "fidelity"},
        }
    }
    r = "POST /servers (create)"
    got = t.answer(
        r, t.call(m.compute, "POST", "/servers", json=spec, microversion="2.37"), "server"
    )
    sid = got.body["server"]["id"]
    transition(t, r, wait(_server_state(t, sid), _settled))
    # what a client may call on a server: a snapshot image, rescue, keypairs
    r = "POST /servers/{id}/action createImage"
    body = {"createImage": {"name": "fid-vm1-snap"}}
    got = t.answer(
        r, t.call(m.compute, "POST", f"/servers/{sid}/action", json=body, microversion="2.45")
    )
    snap = (got.body or {}).get("image_id") if got.status < 300 else None
    transition(t, r, wait(_server_state(t, sid), _settled))
    if snap:
        t.record(r, "GET the image", str(t.call(a.image, "GET", f"/images/{snap}").status))
        t.call(a.image, "DELETE", f"/images/{snap}")
    r = "POST /servers/{id}/action rescue"
    t.answer(r, t.call(m.compute, "POST", f"/servers/{sid}/action", json={"rescue": None}))
    transition(t, r, wait(_server_state(t, sid), _settled))
    r = "POST /servers/{id}/action unrescue"
    t.answer(
        r, t.call(m.compute, "POST", f"/servers/{sid}/action", json={"unrescue": None}), keys=False
    )
    transition(t, r, wait(_server_state(t, sid), _settled))
    t.answer("GET /os-keypairs", t.call(m.compute, "GET", "/os-keypairs"))
    key = {"keypair": {"name": "fid-key", "public_key": public_key()}}
    r = "POST /os-keypairs (import)"
    t.answer(r, t.call(m.compute, "POST", "/os-keypairs", json=key, microversion="2.92"), "keypair")
    r = "DELETE /os-keypairs/{name}"
    t.answer(r, t.call(m.compute, "DELETE", "/os-keypairs/fid-key"), keys=False)
    # sweeper server(): GET /servers/{id} at 2.9
    r = "GET /servers/{id} (2.9)"
    t.answer(r, t.call(cp, "GET", f"/servers/{sid}", microversion=SERVER_MV), "server")
    t.answer(
        "GET /servers/{missing} (2.9)",
        t.call(cp, "GET", f"/servers/{MISSING}", microversion=SERVER_MV),
    )
    # reconcile server_pages()
    r = "GET /servers/detail?all_tenants&limit"
    got = t.answer(r, t.call(cp, "GET", "/servers/detail?all_tenants=1&limit=1000"))
    t.record(r, "server keys", got.keys("servers", 0))
    # inventory and spared: servers of a project (SDK's Server, default microversion)
    r = "GET /servers/detail?all_tenants&project_id"
    got = t.answer(r, t.call(cp, "GET", f"/servers/detail?all_tenants=1&project_id={p}"))
    t.record(r, "found", str(len((got.body or {}).get("servers", []))))
    # servers_from_image (the project's image is not this server's: none)
    r = "GET /servers/detail?all_tenants&image"
    got = t.answer(r, t.call(cp, "GET", f"/servers/detail?all_tenants=1&image={t.image}"))
    t.record(
        r, "found", str(len([s for s in (got.body or {}).get("servers", []) if s["id"] == sid]))
    )
    # the walk-through's stop, then the sweeper's shelve and delete
    r = "POST /servers/{id}/action os-stop"
    t.answer(
        r, t.call(m.compute, "POST", f"/servers/{sid}/action", json={"os-stop": None}), keys=False
    )
    transition(t, r, wait(_server_state(t, sid), _settled))
    r = "POST /servers/{id}/action shelve"
    t.answer(r, t.call(cp, "POST", f"/servers/{sid}/action", json={"shelve": None}), keys=False)
    transition(
        t, r, wait(_server_state(t, sid), lambda s: s is None or s[0] == "SHELVED_OFFLOADED")
    )
    r = "DELETE /servers/{id}"
    t.answer(r, t.call(cp, "DELETE", f"/servers/{sid}"), keys=False)
    transition(t, r, wait(_server_state(t, sid), lambda s: s is None))
    # reconcile: deleted servers as Nova lists them
    r = "GET /servers/detail?all_tenants&deleted=true"
    got = t.answer(
        r, t.call(cp, "GET", f"/servers/detail?all_tenants=1&deleted=true&project_id={p}")
    )
    statuses = sorted(
        s.get("status", "?") for s in (got.body or {}).get("servers", []) if s["id"] == sid
    )
    t.record(r, "the deleted server", ",".join(statuses) or "absent")


def probe_attachment(t: Target) -> None:
    """A volume attached to a server: what the cleanup's spared() reads on both sides
    (the server's attached volumes, the volume's attachments), and what it holds back.
    Both stay as they are (the server goes with the test's others, its volume detached)."""
    m, cp, bs = t.member, t.admin.compute, t.admin.block_storage
    spec = {
        "server": {
            "name": "fid-vm2",
            "imageRef": t.image,
            "flavorRef": t.flavor,
            "networks": "none",
        }
    }
    created = t.call(m.compute, "POST", "/servers", json=spec, microversion="2.37")
    sid = created.body["server"]["id"]
    wait(_server_state(t, sid), _settled)
    body = {"volume": {"size": 1, "name": "fid-attached"}}
    vid = t.call(m.block_storage, "POST", "/volumes", json=body).body["volume"]["id"]
    wait(_volume_state(t, vid), lambda s: s is None or s[0] != "creating")
    r = "POST /servers/{id}/os-volume_attachments"
    attach = {"volumeAttachment": {"volumeId": vid}}
    path = f"/servers/{sid}/os-volume_attachments"
    t.answer(r, t.call(m.compute, "POST", path, json=attach), "volumeAttachment")
    transition(t, r, wait(_volume_state(t, vid), lambda s: s is None or s[0] == "in-use"))
    r = "GET /servers/{id} (2.9, a volume attached)"
    got = t.call(cp, "GET", f"/servers/{sid}", microversion=SERVER_MV)
    attached = got.body["server"].get("os-extended-volumes:volumes_attached") or []
    t.record(r, "volumes_attached keys", frozenset(attached[0]) if attached else frozenset())
    r = "GET /volumes/{id} (attached)"
    got = t.call(bs, "GET", f"/volumes/{vid}")
    attachments = got.body["volume"].get("attachments") or []
    t.record(r, "attachment keys", frozenset(attachments[0]) if attachments else frozenset())
    t.record(
        r,
        "server_id",
        "the server" if attachments and attachments[0].get("server_id") == sid else "-",
    )
    r = "DELETE /volumes/{id} (attached)"
    t.answer(r, t.call(m.block_storage, "DELETE", f"/volumes/{vid}"))


def _volume_state(t: Target, vid: str) -> Callable[[], tuple[str, ...] | None]:
    def read() -> tuple[str, ...] | None:
        got = t.call(t.admin.block_storage, "GET", f"/volumes/{vid}")
        return None if got.status == 404 else (got.body["volume"]["status"],)

    return read


def probe_volumes(t: Target) -> None:
    a, m, p = t.admin, t.member, t.project_id
    bs, mbs = a.block_storage, m.block_storage
    r = "POST /volumes (create)"
    got = t.answer(
        r,
        t.call(mbs, "POST", "/volumes", json={"volume": {"size": 1, "name": "fid-vol"}}),
        "volume",
    )
    vid = got.body["volume"]["id"]
    t.record(r, "status in answer", str(got.body["volume"].get("status")))
    # the answer says "creating"; whether a read after it still does is a race
    seen = wait(_volume_state(t, vid), lambda s: s is None or s[0] not in ("creating",))
    transition(t, r, seen, after=False)
    # inventory and spared (admin)
    r = "GET /volumes/detail?all_tenants&project_id (admin)"
    got = t.answer(r, t.call(bs, "GET", f"/volumes/detail?all_tenants=1&project_id={p}"))
    t.record(r, "volume keys", got.keys("volumes", 0))
    t.answer("GET /volumes/{id} (admin)", t.call(bs, "GET", f"/volumes/{vid}"), "volume")
    # what the project's own member sees (the cleanup connection is one)
    t.answer("GET /volumes/{id} (member)", t.call(mbs, "GET", f"/volumes/{vid}"), "volume")
    r = "GET /volumes/detail (member)"
    got = t.answer(r, t.call(mbs, "GET", "/volumes/detail"))
    t.record(r, "volume keys", got.keys("volumes", 0))
    t.answer("GET /volumes/{missing}", t.call(bs, "GET", f"/volumes/{MISSING}"))
    # microversions: the version document, none asked, the highest, one too high
    got = t.call(bs, "GET", "/")  # the project's endpoint; the versions are one level up
    doc = t.call(bs, "GET", bs.get_endpoint().rsplit("/v3", 1)[0] + "/v3/")
    versions = (doc.body or {}).get("versions") or [{}]
    top = str(versions[0].get("version"))
    t.record("GET /v3/ (version document)", "status", str(doc.status))
    t.record("GET /v3/ (version document)", "max microversion", top)
    got = t.call(mbs, "GET", "/volumes")
    t.record("GET /volumes (no microversion)", "status", str(got.status))
    t.record(
        "GET /volumes (no microversion)",
        "answered version",
        got.headers.get("openstack-api-version", "none"),
    )
    got = t.call(mbs, "GET", "/volumes", microversion=top)
    t.record("GET /volumes (max microversion)", "status", str(got.status))
    got = t.call(mbs, "GET", "/volumes", headers={"OpenStack-API-Version": "volume latest"})
    t.record("GET /volumes (latest)", "status", str(got.status))
    t.record(
        "GET /volumes (latest)",
        "answered version",
        got.headers.get("openstack-api-version", "none"),
    )
    got = t.call(mbs, "GET", "/volumes", headers={"OpenStack-API-Version": "volume 3.x"})
    t.record("GET /volumes (microversion 3.x)", "status", str(got.status))
    r = "GET /volumes/{id} (admin, max microversion)"
    t.answer(r, t.call(bs, "GET", f"/volumes/{vid}", microversion=top), "volume")
    r = "GET /volumes/{id} (member, max microversion)"
    t.answer(r, t.call(mbs, "GET", f"/volumes/{vid}", microversion=top), "volume")
    major, minor = top.split(".") if "." in top else ("3", "0")
    beyond = f"{major}.{int(minor) + 1}"
    got = t.call(mbs, "GET", "/volumes", microversion=beyond)
    r = "GET /volumes (max + 1 microversion)"
    t.record(r, "status", str(got.status))
    t.record(r, "keys", got.keys())
    fault: dict[str, Any] = next(iter((got.body or {}).values()), {}) if got.status >= 400 else {}
    t.record(r, "message", str(fault.get("message", "")))
    # a snapshot: what the project's member and the inventory see, and what it holds back
    r = "POST /snapshots (create)"
    body = {"snapshot": {"volume_id": vid, "name": "fid-snap"}}
    got = t.answer(r, t.call(mbs, "POST", "/snapshots", json=body), "snapshot")
    snap = got.body["snapshot"]["id"]
    t.record(r, "status in answer", str(got.body["snapshot"].get("status")))

    def snap_state() -> tuple[str, ...] | None:
        got = t.call(bs, "GET", f"/snapshots/{snap}")
        return None if got.status == 404 else (got.body["snapshot"]["status"],)

    transition(t, r, wait(snap_state, lambda s: s is None or s[0] != "creating"), after=False)
    t.answer("GET /snapshots/{id} (member)", t.call(mbs, "GET", f"/snapshots/{snap}"), "snapshot")
    r = "GET /snapshots/detail?all_tenants&project_id"
    got = t.answer(r, t.call(bs, "GET", f"/snapshots/detail?all_tenants=1&project_id={p}"))
    t.record(r, "snapshot keys", got.keys("snapshots", 0))
    r = "GET /snapshots/{id} (member, max microversion)"
    t.answer(r, t.call(mbs, "GET", f"/snapshots/{snap}", microversion=top), "snapshot")
    t.answer("DELETE /volumes/{id} (has a snapshot)", t.call(mbs, "DELETE", f"/volumes/{vid}"))
    r = "DELETE /snapshots/{id}"
    t.answer(r, t.call(mbs, "DELETE", f"/snapshots/{snap}"), keys=False)
    transition(t, r, wait(snap_state, lambda s: s is None), after=False)
    # the endpoints a client may call on a volume
    r = "PUT /volumes/{id} (name)"
    got = t.answer(
        r, t.call(mbs, "PUT", f"/volumes/{vid}", json={"volume": {"name": "fid-vol-2"}}), "volume"
    )
    t.record(r, "read back", str(t.call(mbs, "GET", f"/volumes/{vid}").body["volume"].get("name")))
    r = "POST /volumes/{id}/metadata"
    got = t.answer(
        r, t.call(mbs, "POST", f"/volumes/{vid}/metadata", json={"metadata": {"k": "v"}})
    )
    t.answer("GET /volumes/{id}/metadata", t.call(mbs, "GET", f"/volumes/{vid}/metadata"))
    r = "POST /volumes/{id}/action os-extend"
    t.answer(
        r,
        t.call(mbs, "POST", f"/volumes/{vid}/action", json={"os-extend": {"new_size": 2}}),
        keys=False,
    )
    transition(t, r, wait(_volume_state(t, vid), lambda s: s is None or s[0] != "extending"))
    got = t.call(mbs, "GET", f"/volumes/{vid}")
    t.record(r, "size after", str((got.body or {}).get("volume", {}).get("size")))
    r = "DELETE /volumes/{id}"
    t.answer(r, t.call(mbs, "DELETE", f"/volumes/{vid}"), keys=False)
    transition(t, r, wait(_volume_state(t, vid), lambda s: s is None))


def probe_network(t: Target) -> None:
    a, m, p = t.admin, t.member, t.project_id
    nw, mnw = a.network, m.network
    public = a.network.find_network("public")
    if public is None:  # the harness's cloud has none until a test makes it
        public = a.network.create_network(
            name="public",
            is_router_external=True,
            provider_network_type="flat",
            provider_physical_network="public",
        )
    if not list(a.network.subnets(network_id=public.id)):
        a.network.create_subnet(network_id=public.id, ip_version=4, cidr="203.0.113.0/24")
    net = mnw.create_network(name="fid-net")
    subnet = mnw.create_subnet(network_id=net.id, ip_version=4, cidr="10.99.0.0/24")
    router = mnw.create_router(name="fid-router", external_gateway_info={"network_id": public.id})
    r = "PUT /v2.0/routers/{id}/add_router_interface"
    got = t.answer(
        r,
        t.call(
            mnw, "PUT", f"/routers/{router.id}/add_router_interface", json={"subnet_id": subnet.id}
        ),
    )
    port = mnw.create_port(network_id=net.id, name="fid-port")
    # the inventory's listings (admin, by project)
    for coll, key in (
        ("networks", "networks"),
        ("subnets", "subnets"),
        ("routers", "routers"),
        ("ports", "ports"),
        ("security-groups", "security_groups"),
    ):
        r = f"GET /v2.0/{coll}?project_id"
        got = t.answer(r, t.call(nw, "GET", f"/{coll}?project_id={p}"))
        t.record(r, "row keys", got.keys(key, 0))
    # what a member sees of its own (the cleanup connection is one)
    r = "GET /v2.0/networks/{id} (member)"
    t.answer(r, t.call(mnw, "GET", f"/networks/{net.id}"), "network")
    r = "GET /v2.0/ports/{id} (member)"
    t.answer(r, t.call(mnw, "GET", f"/ports/{port.id}"), "port")
    # spared: ports of a device, router interfaces on a network
    r = "GET /v2.0/ports?device_id (router)"
    got = t.answer(r, t.call(nw, "GET", f"/ports?device_id={router.id}"))
    t.record(
        r, "device owners", ",".join(sorted(x["device_owner"] for x in got.body.get("ports", [])))
    )
    # a floating IP: made, associated, listed (ip.port_id, its router)
    r = "POST /v2.0/floatingips (with port)"
    body = {"floatingip": {"floating_network_id": public.id, "port_id": port.id}}
    got = t.answer(r, t.call(mnw, "POST", "/floatingips", json=body), "floatingip")
    fip = got.body["floatingip"] if got.status < 300 else {}
    t.record(
        r,
        "router_id",
        "the router" if fip.get("router_id") == router.id else str(fip.get("router_id")),
    )
    r = "GET /v2.0/floatingips?project_id"
    got = t.answer(r, t.call(nw, "GET", f"/floatingips?project_id={p}"))
    t.record(r, "row keys", got.keys("floatingips", 0))
    rows = got.body.get("floatingips", []) if got.status < 300 else []
    t.record(
        r, "router_id", "the router" if rows and rows[0].get("router_id") == router.id else "none"
    )
    # a port no router joins to the external network cannot have a floating IP
    lone = mnw.create_network(name="fid-lone")
    mnw.create_subnet(network_id=lone.id, ip_version=4, cidr="10.98.0.0/24")
    lone_port = mnw.create_port(network_id=lone.id)
    r = "PUT /v2.0/floatingips/{id} (port no router reaches)"
    body = {"floatingip": {"port_id": lone_port.id}}
    got = t.answer(r, t.call(mnw, "PUT", f"/floatingips/{fip.get('id', MISSING)}", json=body))
    t.record(r, "error type", str((got.body or {}).get("NeutronError", {}).get("type")))
    # security group rules: the acceptable-use rule reads one and deletes it
    sg = mnw.create_security_group(name="fid-sg")
    rule = {
        "security_group_rule": {
            "security_group_id": sg.id,
            "direction": "ingress",
            "ethertype": "IPv4",
            "protocol": "tcp",
            "port_range_min": 22,
            "port_range_max": 22,
            "remote_ip_prefix": "0.0.0.0/0",
        }
    }
    r = "POST /v2.0/security-group-rules"
    got = t.answer(
        r, t.call(mnw, "POST", "/security-group-rules", json=rule), "security_group_rule"
    )
    rid = got.body["security_group_rule"]["id"]
    r = "POST /v2.0/security-group-rules (duplicate)"
    got = t.answer(r, t.call(mnw, "POST", "/security-group-rules", json=rule))
    t.record(r, "error type", str((got.body or {}).get("NeutronError", {}).get("type")))
    t.answer(
        "GET /v2.0/security-group-rules/{id}",
        t.call(nw, "GET", f"/security-group-rules/{rid}"),
        "security_group_rule",
    )
    t.answer(
        "DELETE /v2.0/security-group-rules/{id}",
        t.call(nw, "DELETE", f"/security-group-rules/{rid}"),
        keys=False,
    )
    r = "GET /v2.0/security-group-rules/{deleted}"
    got = t.answer(r, t.call(nw, "GET", f"/security-group-rules/{rid}"))
    t.record(r, "error type", str((got.body or {}).get("NeutronError", {}).get("type")))
    # the cleanup's detach of a router interface
    r = "PUT /v2.0/routers/{id}/remove_router_interface (a floating IP needs it)"
    got = t.answer(
        r,
        t.call(
            mnw,
            "PUT",
            f"/routers/{router.id}/remove_router_interface",
            json={"subnet_id": subnet.id},
        ),
    )
    t.record(r, "error type", str((got.body or {}).get("NeutronError", {}).get("type")))
    # what project_cleanup meets when it goes in the wrong order
    default = next(
        g["id"]
        for g in t.call(mnw, "GET", f"/security-groups?project_id={p}").body["security_groups"]
        if g["name"] == "default"
    )
    in_use = mnw.create_security_group(name="fid-in-use")
    mnw.update_port(port, security_group_ids=[in_use.id])
    for r, path in (
        ("DELETE /v2.0/networks/{id} (a port on it)", f"/networks/{net.id}"),
        ("DELETE /v2.0/subnets/{id} (a port on it)", f"/subnets/{subnet.id}"),
        ("DELETE /v2.0/routers/{id} (an interface on it)", f"/routers/{router.id}"),
        ("DELETE /v2.0/security-groups/{default} (member)", f"/security-groups/{default}"),
        ("DELETE /v2.0/security-groups/{id} (a port uses it)", f"/security-groups/{in_use.id}"),
    ):
        got = t.answer(r, t.call(mnw, "DELETE", path))
        t.record(r, "error type", str((got.body or {}).get("NeutronError", {}).get("type")))
    # as project_cleanup goes: the floating IP, the interface, the router
    t.answer(
        "DELETE /v2.0/floatingips/{id}",
        t.call(mnw, "DELETE", f"/floatingips/{fip.get('id', MISSING)}"),
        keys=False,
    )
    r = "PUT /v2.0/routers/{id}/remove_router_interface"
    body = {"subnet_id": subnet.id}
    t.answer(r, t.call(mnw, "PUT", f"/routers/{router.id}/remove_router_interface", json=body))
    t.answer(
        "DELETE /v2.0/routers/{id}", t.call(mnw, "DELETE", f"/routers/{router.id}"), keys=False
    )


def probe(t: Target) -> dict[tuple[str, str], Value]:
    """Every probe on one cloud: what it answered, by (request, aspect)."""
    prepare(t, uuid.uuid4().hex[:6])
    probe_identity(t)
    image = probe_images(t)
    probe_servers(t, image)
    probe_volumes(t)
    probe_attachment(t)
    probe_network(t)
    ids = t.request_ids
    t.record(
        "every response",
        "X-OpenStack-Request-Id",
        "all" if all(ids) else "none" if not any(ids) else f"{sum(ids)} of {len(ids)}",
    )
    return dict(t.seen)


# -- the comparison ------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    request: str
    aspect: str
    real: str
    sim: str
    same: bool


def _cell(value: Value | None, other: Value | None) -> str:
    if value is None:
        return "(not asked)"
    if isinstance(value, frozenset):
        if isinstance(other, frozenset):
            only = sorted(value - other)
            return ("only " + ", ".join(only)) if only else "same keys"
        return ", ".join(sorted(value)) or "(none)"
    return value or "(none)"


def compare(real: dict[tuple[str, str], Value], sim: dict[tuple[str, str], Value]) -> list[Row]:
    rows: list[Row] = []
    for key in list(dict.fromkeys([*real, *sim])):
        r, s = real.get(key), sim.get(key)
        rows.append(Row(key[0], key[1], _cell(r, s), _cell(s, r), r == s or RACED in (r, s)))
    return rows


def doc_rows(rows: list[Row], doc: Path = DOC) -> str:
    """The differences as rows for the document's table, each with the reason the document
    already gives for it (``?`` for a new one): to paste when updating the document."""
    listed = accepted(doc) if doc.exists() else {}
    return "".join(
        f"| {_esc(x.request)} | {x.aspect} | {_esc(x.real)} | {_esc(x.sim)} | "
        f"{_esc(listed.get((x.request, x.aspect), ('', '', '?'))[2])} |\n"
        for x in rows
        if not x.same
    )


def _esc(text: str) -> str:
    return text.replace("|", "\\|")


def table(rows: list[Row]) -> str:
    """The comparison as a Markdown table."""
    out = ["| request | aspect | real | sim | same? |", "|---|---|---|---|---|"]
    out += [
        f"| {_esc(x.request)} | {x.aspect} | {_esc(x.real)} | {_esc(x.sim)} | {'yes' if x.same else '**no**'} |"
        for x in rows
    ]
    differ = sum(not x.same for x in rows)
    out.append("")
    out.append(f"{len(rows)} compared, {differ} differ.")
    return "\n".join(out) + "\n"


_ROW = re.compile(r"^\|(.+)\|\s*$")


def accepted(doc: Path = DOC) -> dict[tuple[str, str], tuple[str, str, str]]:
    """The differences ``docs/sim-fidelity.md`` accepts: (request, aspect) -> (real, sim,
    reason), read from its table under "## Accepted differences"."""
    found: dict[tuple[str, str], tuple[str, str, str]] = {}
    inside = False
    for line in doc.read_text().splitlines():
        if line.startswith("## "):
            inside = line.strip() == "## Accepted differences"
            continue
        m = _ROW.match(line) if inside else None
        if m is None:
            continue
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", m.group(1))]
        if len(cells) != 5 or cells[0] in ("request", "") or set(cells[0]) <= {"-"}:
            continue
        found[(cells[0].strip("`"), cells[1])] = (
            cells[2].strip("`"),
            cells[3].strip("`"),
            cells[4],
        )
    return found


def judge(rows: list[Row], doc: Path = DOC) -> list[str]:
    """What disagrees with the document: new differences, changed ones, closed ones."""
    listed = accepted(doc)
    problems: list[str] = []
    for x in rows:
        key = (x.request, x.aspect)
        if not x.same and key not in listed:
            problems.append(
                f"new difference: {x.request} | {x.aspect} | real {x.real} | sim {x.sim}"
            )
        elif not x.same and listed[key][:2] != (x.real, x.sim):
            real, sim, _ = listed[key]
            problems.append(
                f"changed difference: {x.request} | {x.aspect}: now real {x.real} / sim {x.sim}, "
                f"the document says real {real} / sim {sim}"
            )
        elif x.same and key in listed and RACED not in (x.real, x.sim):
            problems.append(
                f"closed difference: {x.request} | {x.aspect} is now the same; remove it from "
                f"{doc.name}"
            )
    problems += [f"no reason given: {k[0]} | {k[1]}" for k, v in listed.items() if not v[2]]
    asked = {(x.request, x.aspect) for x in rows}
    problems += [f"listed but never compared: {k[0]} | {k[1]}" for k in listed if k not in asked]
    return problems


# -- the two clouds --------------------------------------------------------------------------
def real_target(run: Any) -> Target:
    import openstack.config
    import openstack.connection

    config = openstack.config.OpenStackConfig(config_files=[str(run.clouds_yaml)])
    admin = openstack.connection.Connection(config=config.get_one("openstack-admin"))
    image = admin.image.find_image("reclaim-test-image", ignore_missing=False)
    return Target("real", run.auth_url, "RegionOne", admin, "reclaim-tiny", str(image.id))


@contextlib.contextmanager
def sim_target() -> Iterator[Target]:
    """A simulated cloud served on a free port, as tests/sim starts one."""
    from reclaim_sim import Cloud, SimClock, SimConfig, SimServer

    cloud = Cloud(
        clock=SimClock(),
        config=SimConfig(
            notification_format="both",
            notify_on_state_change="vm_and_task_state",
            # servers and volumes take time, as on the real services (0 would be instant)
            task_seconds=0.5,
        ),
    )
    image = cloud.image.create_image(
        owner=cloud.admin_project_id,
        name="reclaim-test-image",
        visibility="public",
        status="active",
        disk_format="raw",
        container_format="bare",
    )
    with SimServer(cloud) as server:
        admin = server.connect()
        try:
            yield Target("sim", server.auth_url, cloud.config.region, admin, "1", image.id)
        finally:
            admin.close()
    cloud.close()


def run_both(run: Any) -> list[Row]:
    """Probe the real cloud ``run`` and a fresh simulated one; the compared rows."""
    real = probe(real_target(run))
    with sim_target() as sim:
        simulated = probe(sim)
    return compare(real, simulated)


def main(argv: list[str] | None = None) -> int:
    from tests.openstack import harness

    parser = argparse.ArgumentParser(
        prog="python -m tests.openstack.fidelity", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--dir", type=Path, default=harness.DEFAULT_DIR)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--doc-rows",
        action="store_true",
        help=f"print the differences as rows for {DOC.name}, with the reasons it gives",
    )
    args = parser.parse_args(argv)
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    with contextlib.ExitStack() as stack:
        if (args.dir / "run.json").exists():
            run = harness.Run.load(args.dir)
        else:
            run = stack.enter_context(harness.running(args.dir, log))
        rows = run_both(run)
    text = table(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(doc_rows(rows) if args.doc_rows else text)
    problems = judge(rows) if DOC.exists() else [f"{DOC} is missing"]
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
