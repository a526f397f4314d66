"""Signed links in notice mails: one resource, one recipient, until a date.

A link is ``<web.base_url>/l/<token>``; the token is an itsdangerous signature (key
``web.secret_key``, salt :data:`SALT`) of the resource's type and id, its project, the
recipient's address and the expiry (the action's due date plus ``web.link_grace``).
Opening it puts that grant in the visitor's session and shows the resource's page; the page
checks the grant for the resource in its own address, so a link cannot be altered to reach
another resource or project. A changed or cut token is refused (400), an expired one too
(410); the time is the web application's clock.

This module imports no web framework: the mailer signs links with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from itsdangerous import BadSignature, URLSafeSerializer

from reclaim.notices.context import long_date
from reclaim.notices.schema import NoticeMessage

if TYPE_CHECKING:
    from starlette.requests import Request

    from reclaim.mailer.addresses import Person
    from reclaim.settings import WebSettings
    from reclaim.web.app import Viewer

#: The signature's salt: a link's token is valid for nothing else (the session cookie is
#: signed with the same key but no salt).
SALT = "reclaim.web.link"
#: Grants a session keeps (the latest links opened).
MAX_GRANTS = 5

#: ``(notice, recipient) -> link`` ("" for none), as the mail renderer takes it.
LinkMaker = Callable[[NoticeMessage, "Person | None"], str]


class BadLink(ValueError):
    """A link that grants nothing: ``status`` (400 changed, 410 expired) and a sentence."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class LinkGrant:
    """What one link lets its recipient see and do: one resource of one project."""

    resource_type: str
    resource_id: str
    project_id: str | None
    recipient: str
    expires: datetime

    def payload(self) -> dict[str, Any]:
        return {
            "t": self.resource_type,
            "r": self.resource_id,
            "p": self.project_id,
            "u": self.recipient,
            "e": int(self.expires.timestamp()),
        }

    @classmethod
    def from_payload(cls, data: Any) -> LinkGrant:
        """Raises ``ValueError`` (KeyError, TypeError) when ``data`` is no grant."""
        if not isinstance(data, dict):
            raise ValueError("not a grant")
        project = data["p"]
        fields = (data["t"], data["r"], data["u"])
        if not all(isinstance(f, str) and f for f in fields) or not (
            project is None or isinstance(project, str)
        ):
            raise ValueError("not a grant")
        return cls(
            resource_type=data["t"],
            resource_id=data["r"],
            project_id=project,
            recipient=data["u"],
            expires=datetime.fromtimestamp(int(data["e"]), UTC),
        )


def _serializer(key: str) -> URLSafeSerializer:
    return URLSafeSerializer(key, salt=SALT)


def sign(grant: LinkGrant, key: str) -> str:
    """The token of ``grant``."""
    token: str = _serializer(key).dumps(grant.payload())
    return token


def verify(token: str, key: str, now: datetime) -> LinkGrant:
    """The grant a token carries, if its signature holds and it has not expired at ``now``.
    Raises :class:`BadLink`."""
    try:
        grant = LinkGrant.from_payload(_serializer(key).loads(token))
    except (BadSignature, ValueError, KeyError, TypeError, OverflowError, OSError) as exc:
        raise BadLink(
            400,
            "This link is not valid: it was changed or cut short on its way. Open it again "
            "from your mail, whole (copy the entire address if your mail program splits it).",
        ) from exc
    if grant.expires <= now:
        raise BadLink(
            410,
            f"This link expired on {long_date(grant.expires)}. The latest mail about this "
            "resource has a fresh link; or ask your cloud's support.",
        )
    return grant


def grant_for(notice: NoticeMessage, recipient: str, web: WebSettings, now: datetime) -> LinkGrant:
    """The grant a mail of ``notice`` to ``recipient`` carries: valid until the action's due
    date (else the notice's own date, else ``now``, when it is mailed) plus
    ``web.link_grace``. Pure."""
    base = notice.due_at or notice.notice_at or now
    return LinkGrant(
        resource_type=notice.resource_type,
        resource_id=notice.resource_id,
        project_id=notice.project_id,
        recipient=recipient,
        expires=base + web.link_grace,
    )


def mail_links(
    web: WebSettings, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> LinkMaker | None:
    """The link maker of the mail renderer, or None when ``web.secret_key`` or
    ``web.base_url`` is not set (mails then carry no link). Operator alerts get none: the
    operators' page shows them."""
    if not web.secret_key or not web.base_url:
        return None

    def link(notice: NoticeMessage, recipient: Person | None) -> str:
        if notice.operator or recipient is None or not notice.resource_id:
            return ""
        grant = grant_for(notice, recipient.address, web, clock())
        return f"{web.base_url}/l/{sign(grant, web.secret_key)}"

    return link


def remember(session: dict[str, Any], grant: LinkGrant, now: datetime) -> None:
    """Keep ``grant`` in the session (the latest :data:`MAX_GRANTS`, expired ones dropped)."""
    kept = [g for g in session.get("links", []) if isinstance(g, dict)]
    fresh = grant.payload()
    kept = [g for g in kept if g != fresh and int(g.get("e", 0)) > now.timestamp()]
    session["links"] = [*kept, fresh][-MAX_GRANTS:]


def granted(session: dict[str, Any], now: datetime) -> list[LinkGrant]:
    """The unexpired grants kept in the session."""
    out = []
    for data in session.get("links", []):
        try:
            grant = LinkGrant.from_payload(data)
        except (ValueError, KeyError, TypeError, OverflowError, OSError):
            continue
        if grant.expires > now:
            out.append(grant)
    return out


def link_access(
    request: Request, resource_type: str, resource_id: str, project_id: str | None
) -> Viewer | None:
    """The access check of mail links: a link opened in this session granted exactly this
    resource, in this project."""
    from reclaim.web.app import Viewer, web_of

    now = web_of(request).now()
    for g in granted(request.session, now):
        if (g.resource_type, g.resource_id) != (resource_type, resource_id):
            continue
        if project_id is not None and g.project_id is not None and g.project_id != project_id:
            continue
        return Viewer(who=f"mail link to {g.recipient}", via="link", project_id=g.project_id)
    return None
