"""What a mail template sees of a notice: dates spelled out, the resource named. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from reclaim.notices.kinds import kind_of
from reclaim.notices.schema import NoticeMessage

if TYPE_CHECKING:
    from reclaim.settings import PolicySettings

_LABELS = {
    "server": "server",
    "project": "project",
    "image": "image",
    "user": "user",
    "security_group_rule": "security group rule",
    "sweep": "sweep",
}


@dataclass(frozen=True)
class Site:
    """Facts about the cloud that templates mention (from the mailer settings)."""

    cloud_name: str = "the research cloud"
    support: str = ""
    policy_url: str = ""


def long_date(when: datetime | None) -> str:
    """``Sunday 15 March 2026 at 09:00 UTC``; empty for None. Pure."""
    if when is None:
        return ""
    when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    return f"{when:%A} {when.day} {when:%B %Y} at {when:%H:%M} UTC"


def short_date(when: datetime | None) -> str:
    """``2026-03-15``; empty for None. Pure."""
    return "" if when is None else f"{when.astimezone(UTC):%Y-%m-%d}"


def days_between(start: datetime | None, end: datetime | None) -> int | None:
    """Whole days from ``start`` to ``end`` (rounded to the nearest day). Pure."""
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() / 86400)


def or_list(words: Iterable[str]) -> str:
    """``stopped or suspended``; ``paused, stopped or suspended``: alternatives in a sentence,
    sorted. Pure."""
    items = sorted(str(w) for w in words)
    if len(items) < 2:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


def rule_delay(notice: NoticeMessage, policy: PolicySettings | None) -> timedelta | None:
    """The period of the notice's own rule: the notice's ``delay`` when it carries one (the
    sweeper's timer, so right whatever the mailer's settings), else the mailer's ``policy``
    for the action (notices made before ``delay`` existed, and completion notices that do
    not carry it yet); None when neither tells. Pure."""
    if notice.delay is not None:
        return notice.delay
    if policy is None:
        return None
    periods = {
        ("server", "shelve"): policy.shelve_after,
        ("server", "delete"): policy.delete_shelved_after,
        ("project", "cleanup"): policy.cleanup_after,
    }
    return periods.get((notice.resource_type, notice.action))


def resource_label(notice: NoticeMessage) -> str:
    """``server "vm-1" (3f2a...)``: the resource as a person would name it. Pure."""
    label = _LABELS.get(notice.resource_type, notice.resource_type.replace("_", " "))
    if notice.resource_name:
        return f'{label} "{notice.resource_name}" ({notice.resource_id})'
    return f"{label} {notice.resource_id}"


def mail_context(
    notice: NoticeMessage,
    site: Site | None = None,
    policy: PolicySettings | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The variables every mail template gets. Pure.

    ``notice`` (the model), ``kind`` (its :class:`~reclaim.notices.kinds.Kind`), ``resource``
    (label), ``name``, ``due`` / ``due_date`` (long and ISO dates of the action), ``notice_date``,
    ``days_left`` (from the notice's own date to the action), ``delay`` (the period of the
    notice's own rule, see :func:`rule_delay`; write it with the ``duration`` filter),
    ``policy`` (the MAILER's policy settings, for the periods of other rules: its
    configuration, which may differ from the sweeper's), ``detail``, ``clause``, ``site``,
    plus ``extra`` (e.g. ``recipient``).
    """
    site = site or Site()
    d = notice.detail

    def when(key: str) -> str:
        text = d.get(key, "")
        try:
            return long_date(datetime.fromisoformat(text.replace("Z", "+00:00"))) if text else ""
        except ValueError:
            return text

    return {
        "notice": notice,
        "kind": kind_of(notice.kind),
        "resource": resource_label(notice),
        "name": notice.resource_name or notice.resource_id,
        "due": long_date(notice.due_at),
        "due_date": short_date(notice.due_at),
        "notice_date": short_date(notice.notice_at),
        "days_left": days_between(notice.notice_at, notice.due_at),
        "delay": rule_delay(notice, policy),
        "policy": policy,
        "detail": d,
        "when": when,
        "clause": notice.clause,
        "site": site,
        "recipient": None,
        **extra,
    }
