"""A sample notice of every kind, and the mails they render to (``docs/notices/``). Pure."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from reclaim.mailer.addresses import Person
from reclaim.mailer.render import Renderer
from reclaim.notices import KINDS, NoticeMessage
from reclaim.notices.context import with_project_name
from reclaim.policy.acceptable_use import EOL_WARNING, EXPOSED_SERVICE
from reclaim.policy.projects import OWNER_IMAGES, PROJECT_CLEANUP
from reclaim.policy.servers import DELETE_SHELVED, SHELVE
from reclaim.settings import PolicySettings
from reclaim.web.links import LinkMaker, mail_links

_SERVER = "3f2a9c1e-8b7d-4e6f-a1b2-c3d4e5f60718"
_SERVER2 = "0c4e8a2b-6d1f-4a3e-9b5c-7d8e9f0a1b2c"
_PROJECT = "b2e1d3c5f7a94d1f8e6a0b1c2d3e4f5a"
_USER = "9d8c7b6a5f4e4d3c2b1a0f9e8d7c6b5a"
_IMAGE = "5e4d3c2b-1a0f-4e8d-9c7b-6a5f4e3d2c1b"
_RULE = "7c6b5a4f-3e2d-4c1b-8a9f-8e7d6c5b4a3f"
_DAY = datetime(2026, 3, 15, 9, 0, tzinfo=UTC)
#: The project's name, as the mailer reads it from Keystone.
PROJECT_NAME = "genomics"

#: The person the examples are addressed to.
READER = Person("ada.lovelace@example.edu", "Ada Lovelace", _USER)


def _server(
    kind: str, rule: str, action: str, clause: str, before: int, **detail: str
) -> NoticeMessage:
    return NoticeMessage(
        kind=kind, resource_type="server", resource_id=_SERVER, project_id=_PROJECT,
        user_id=_USER, action=action, due_at=_DAY,
        notice_at=_DAY - timedelta(days=before) if before else None,
        published_at=_DAY - timedelta(days=before) if before else None, clause=clause,
        detail={"name": "analysis-vm", "state": "stopped", "image_id": _IMAGE, **detail},
        dedupe_key=f"server|{_SERVER}|{rule}|{kind}|example",
    )  # fmt: skip


def _project(kind: str, action: str, clause: str, before: int, **detail: str) -> NoticeMessage:
    return NoticeMessage(
        kind=kind, resource_type="project", resource_id=_PROJECT, project_id=_PROJECT,
        action=action, due_at=_DAY, notice_at=_DAY - timedelta(days=before) if before else None,
        published_at=_DAY - timedelta(days=before) if before else None, clause=clause,
        detail={"allocation_id": "alloc-2025-0147", "contacts": "pi.beta@example.edu", **detail},
        dedupe_key=f"project|{_PROJECT}|{kind}|example",
    )  # fmt: skip


def _rule(kind: str, action: str = "", before: int = 0) -> NoticeMessage:
    """A notice about a security group rule that exposes MongoDB: dated when it names an
    ``action``, scheduled ``before`` days ahead of it."""
    return NoticeMessage(
        kind=kind, resource_type="security_group_rule", resource_id=_RULE, project_id=_PROJECT,
        action=action, due_at=_DAY if action else None,
        notice_at=_DAY - timedelta(days=before) if before else None,
        clause=EXPOSED_SERVICE.clause,
        detail={"security_group_id": "sg-0a1b2c", "remote_ip_prefix": "0.0.0.0/0",
                "protocol": "tcp", "ports": "MongoDB 27017"},
        dedupe_key=f"rule|{_RULE}|{kind}|example",
    )  # fmt: skip


def _server_alert(
    kind: str, clause: str, reason: str, user_id: str | None = None, **detail: str
) -> NoticeMessage:
    """An operator alert about the server's shelve."""
    return NoticeMessage(
        kind=kind, resource_type="server", resource_id=_SERVER, project_id=_PROJECT,
        user_id=user_id, action="shelve", due_at=_DAY, clause=clause,
        detail={"reason": reason, "rule": "shelve", **detail, "name": "analysis-vm"},
        dedupe_key=f"server|{_SERVER}|shelve|{kind}|example",
    )  # fmt: skip


def _project_alert(
    kind: str, key: str, clause: str = "", action: str = "cleanup", **detail: str
) -> NoticeMessage:
    """A notice about the project's ``action`` on the examples' day, deduplicated by
    ``key``."""
    return NoticeMessage(
        kind=kind, resource_type="project", resource_id=_PROJECT, project_id=_PROJECT,
        action=action, due_at=_DAY, clause=clause, detail=detail, dedupe_key=f"{key}|example",
    )  # fmt: skip


def examples() -> list[NoticeMessage]:
    """One notice per kind of :data:`reclaim.notices.KINDS`, with realistic details."""
    policy = PolicySettings()  # the periods the quoted clauses state: the defaults
    s = SHELVE.clause_for(policy.shelve_after)
    d = DELETE_SHELVED.clause_for(policy.delete_shelved_after)
    c, i = PROJECT_CLEANUP.clause_for(policy.cleanup_after), OWNER_IMAGES.clause
    out = [
        _server("shelve_upcoming", "shelve", "shelve", s, 7),
        _server("shelved", "shelve", "shelve", s, 0),
        _server("delete_upcoming", "delete-shelved", "delete", d, 30, state="shelved_offloaded"),
        _server("deleted", "delete-shelved", "delete", d, 0, state="shelved_offloaded"),
        _project("allocation_ended", "cleanup", c, 180),
        _project("cleanup_upcoming", "cleanup", c, 7),
        _project(
            "project_cleaned",
            "cleanup",
            c,
            0,
            deleted="servers 3, volumes 2, networks 1",
            kept="servers 1 (exempt: course-vm), volumes 1, networks 1",
        ),
        _project("date_changed", "cleanup", c, 60),
        _project("images_deletion_upcoming", "delete_images", i, 7, images="genomics-base"),
        _project("images_deleted", "delete_images", i, 0, images="genomics-base"),
        NoticeMessage(
            kind="image_going_away",
            resource_type="image",
            resource_id=_IMAGE,
            action="delete_images",
            due_at=_DAY,
            notice_at=_DAY - timedelta(days=30),
            clause=i,
            user_id=_USER,
            detail={
                "image_name": "genomics-base",
                "image_id": _IMAGE,
                "servers": f"{_SERVER},{_SERVER2}",
                "server_names": json.dumps({_SERVER: "analysis-vm", _SERVER2: "pipeline-2"}),
                "images_go_at": "2026-03-15T09:00:00Z",
                "reason": "no longer has an allocation",
            },
            dedupe_key=f"image|{_IMAGE}|image_going_away|example",
        ),
        NoticeMessage(
            kind="eol_image",
            resource_type="image",
            resource_id=_IMAGE,
            user_id=_USER,
            clause=EOL_WARNING.clause,
            detail={
                "image_name": "Ubuntu 20.04",
                "os_distro": "ubuntu",
                "os_version": "20.04",
                "eol_at": "2025-05-31T00:00:00Z",
                "servers": f"{_SERVER},{_SERVER2}",
                "server_names": json.dumps({_SERVER: "analysis-vm", _SERVER2: "pipeline-2"}),
            },
            dedupe_key=f"image|{_IMAGE}|eol_image|example",
        ),
        _rule("exposed_service"),
        _rule("rule_removal_upcoming", "remove_rule", before=1),
        _rule("rule_removed", "remove_rule"),
        _server_alert(
            "action_failed", s, "409 Conflict: instance is locked", user_id=_USER, attempts="5"
        ),
        _server_alert("action_skipped", s, "server is active again"),
        NoticeMessage(
            kind="sweep_cap_reached",
            resource_type="sweep",
            resource_id="global",
            detail={
                "reason": "cap of 100 destructive actions per sweep reached",
                "actions": "100",
                "owner": "sweeper-1:4242:ab12cd34",
            },
            dedupe_key="sweep|global|sweep_cap_reached|example",
        ),
        _project_alert(
            "cleanup_leftovers",
            f"project|{_PROJECT}|cleanup_leftovers",
            clause=c,
            reason="2 resources still listed after cleanup",
            leftovers="image 1d2c (protected), security group default",
        ),
        _project_alert(
            "mail_undeliverable",
            f"mail_undeliverable|project|{_PROJECT}",
            reason="1 address(es) of a cleanup_upcoming notice got no mail",
            notice_kind="cleanup_upcoming",
            notice_id="0b7c3e1a-52f4-5d2e-9b1e-3c4d5e6f7a8b",
            addresses="'a@example.edu, b@example.org': The email address is not valid. "
            "It must have exactly one @-sign.",
        ),
        NoticeMessage(
            kind="store_item_unreadable",
            resource_type="server",
            resource_id=_SERVER,
            detail={
                "reason": "doc: 0.due_at: Input should be a valid datetime",
                "key": f"server#{_SERVER}",
                "fix": f"reclaim store quarantine show server#{_SERVER}",
            },
            dedupe_key=f"server#{_SERVER}|store_item_unreadable",
            operator=True,
        ),
        _project_alert(
            "quota_review",
            f"project|{_PROJECT}|quota_review",
            action="review",
            note="a kind this mailer has no template for",
        ),
    ]
    assert {n.kind for n in out} >= set(KINDS), "every kind has an example"
    return out


#: Where the examples' links point (a made-up address; signed with a made-up key).
EXAMPLE_WEB = "https://reclaim.example.edu"


def example_links() -> LinkMaker:
    """The link maker of the examples: links to :data:`EXAMPLE_WEB`, signed with a key that
    signs nothing else."""
    from reclaim.settings import WebSettings

    links = mail_links(
        WebSettings(secret_key="example-only-key", base_url=EXAMPLE_WEB), clock=lambda: _DAY
    )
    assert links is not None
    return links


def example_files(renderer: Renderer | None = None) -> dict[str, str]:
    """File name -> content of the rendered examples: ``<kind>.txt`` (headers and text) and
    ``<kind>.html``, plus ``<kind>.json`` (the notice payload as published; the mails name
    its project :data:`PROJECT_NAME`, as the mailer finds it in Keystone); ``digest.txt`` and
    ``digest.html``, a daily digest of several kinds. Pure."""
    renderer = renderer or Renderer(links=example_links())
    files: dict[str, str] = {}
    for notice in examples():
        named = with_project_name(notice, PROJECT_NAME) if notice.project_id else notice
        to = Person("operators@example.edu", "", None) if notice.operator else READER
        r = renderer.render(named, to)
        head = f"To: {to.address}\nSubject: {r.subject}\n\n"
        files[f"{notice.kind}.txt"] = head + r.text
        files[f"{notice.kind}.html"] = r.html
        files[f"{notice.kind}.json"] = notice.model_dump_json(indent=2) + "\n"
    named_digest = [with_project_name(n, PROJECT_NAME) for n in digest_examples()]
    digest = renderer.render_digest(named_digest, READER)
    files["digest.txt"] = f"To: {READER.address}\nSubject: {digest.subject}\n\n" + digest.text
    files["digest.html"] = digest.html
    return files


#: The kinds the digest example gathers (what one person may get in a day).
DIGEST_KINDS = ("shelve_upcoming", "delete_upcoming", "image_going_away", "cleanup_upcoming")


def digest_examples() -> list[NoticeMessage]:
    """The notices of the daily digest example (``digest.txt``, ``digest.html``). Pure."""
    return [n for n in examples() if n.kind in DIGEST_KINDS]


def write_examples(directory: Path, renderer: Renderer | None = None) -> list[Path]:
    """Write :func:`example_files` into ``directory``; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in sorted(example_files(renderer).items()):
        path = directory / name
        path.write_text(content)
        written.append(path)
    return written
