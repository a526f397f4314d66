"""What a mail template sees of a notice: dates spelled out, the resource named. Pure."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from reclaim.notices.kinds import DATE_CHANGED, kind_of
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


def read_at(notice: NoticeMessage, now: datetime | None = None) -> datetime | None:
    """When the mail of ``notice`` is rendered: ``now`` (the mailer's clock) when given, else
    the notice's publication (else its scheduled date, for notices published before
    ``published_at`` existed): a mail rendered without a clock reads as if sent on time.
    Pure."""
    return now or notice.published_at or notice.notice_at


def days_left(notice: NoticeMessage, now: datetime | None = None) -> int | None:
    """Whole days from the mail's rendering (see :func:`read_at`) to the notice's action;
    None when not ahead: a mail never states a count for a date already past. Pure."""
    days = days_between(read_at(notice, now), notice.due_at)
    return days if days is not None and days > 0 else None


def date_passed(notice: NoticeMessage, now: datetime | None = None) -> bool:
    """Whether the notice announced its action's date as ahead and that date is no longer
    ahead when the mail is rendered (see :func:`read_at`): a notice delivered late (the
    mailer was down, or the digest held it). Such a mail must not announce the date as
    ahead. A notice of something done (its date at or before its publication) is never
    "passed"; one that does not say when it was published is judged by its kind. Pure."""
    at = read_at(notice, now)
    if notice.due_at is None or at is None or notice.due_at > at:
        return False
    published = notice.published_at or notice.notice_at
    return notice.due_at > published if published is not None else kind_of(notice.kind).upcoming


def first_warning_floor(notice: NoticeMessage, now: datetime | None = None) -> datetime | None:
    """For a warning whose date has passed: the date before which its action cannot happen
    if this is the first warning of it that is delivered, else None. Pure.

    The sweeper holds an action until the rule's whole warning period has run from the first
    warning delivered (DESIGN §6). The notice does not carry that period, but the lead it
    was published with (its date minus its publication) is never longer: the date this
    returns is at or before the one the sweeper honours. Only for warnings (``upcoming``
    kinds) other than a restated date, which carries no lead of its own.
    """
    at = read_at(notice, now)
    published = notice.published_at or notice.notice_at
    kind = kind_of(notice.kind)
    if (
        not kind.upcoming
        or notice.kind == DATE_CHANGED
        or at is None
        or published is None
        or notice.due_at is None
        or not date_passed(notice, now)
    ):
        return None
    lead = notice.due_at - published
    return at + lead if lead > timedelta(0) else None


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


def labelled(name: str, ident: str) -> str:
    """``"genomics" (b2e1...)`` when there is a name, else the id alone. Pure."""
    return f'"{name}" ({ident})' if name and name != ident else ident


def project_label(notice: NoticeMessage) -> str:
    """The notice's project as a person would name it: its name (``detail.project_name``,
    or the resource's own name when the notice is about a project) with the id beside it;
    the id alone when no name is known; empty without a project. Pure."""
    pid = notice.project_id or (notice.resource_id if notice.resource_type == "project" else "")
    if not pid:
        return ""
    name = notice.detail.get("project_name", "")
    if not name and notice.resource_type == "project" and notice.resource_id == pid:
        name = notice.resource_name
    return labelled(name, pid)


def project_name(notice: NoticeMessage) -> str:
    """The project's name alone for a subject line (its id when no name is known). Pure."""
    label = project_label(notice)
    return label.split('" (')[0].lstrip('"') if label.startswith('"') else label


def with_project_name(notice: NoticeMessage, name: str) -> NoticeMessage:
    """``notice`` with its project's ``name`` in ``detail.project_name`` (and as the resource's
    name when the notice is about that project), unless it carries one already. Pure."""
    if not name or notice.detail.get("project_name"):
        return notice
    update: dict[str, Any] = {"detail": {**notice.detail, "project_name": name}}
    if notice.resource_type == "project" and not notice.resource_name:
        update["resource_name"] = name
    return notice.model_copy(update=update)


def server_labels(detail: Mapping[str, str]) -> list[str]:
    """The servers a notice lists, each as ``"name" (id)``. Pure.

    ``detail["servers"]`` holds their ids, comma-separated; ``detail["server_names"]`` a JSON
    object of id to name. A name not given leaves the id alone; an entry of ``servers`` that
    is no id of ``server_names`` (older notices held names there) is listed as it is.
    """
    try:
        names = json.loads(detail.get("server_names") or "{}")
    except ValueError:
        names = {}
    if not isinstance(names, dict):
        names = {}
    ids = [s.strip() for s in detail.get("servers", "").split(",") if s.strip()]
    return [labelled(str(names.get(i, "")), i) for i in ids]


#: How people write the operating systems Glance's ``os_distro`` names in lower case.
_DISTROS = {
    "almalinux": "AlmaLinux",
    "arch": "Arch Linux",
    "centos": "CentOS",
    "debian": "Debian",
    "fedora": "Fedora",
    "freebsd": "FreeBSD",
    "netbsd": "NetBSD",
    "openbsd": "OpenBSD",
    "opensuse": "openSUSE",
    "rhel": "RHEL",
    "rocky": "Rocky Linux",
    "sled": "SLED",
    "sles": "SLES",
    "ubuntu": "Ubuntu",
    "windows": "Windows",
}


def os_label(detail: Mapping[str, str], name: str = "") -> str:
    """``Ubuntu 20.04``: the image's operating system (``os_distro``, ``os_version``) as
    people write it; empty when the notice does not say, or when ``name`` (the image's)
    says it already ("ubuntu-20.04" is not followed by "Ubuntu 20.04"). Pure."""
    distro = detail.get("os_distro", "").strip()
    version = detail.get("os_version", "").strip()
    if not distro:
        return ""
    written = _DISTROS.get(distro.lower()) or (
        distro[:1].upper() + distro[1:] if distro.islower() else distro
    )
    said = name.lower()
    if any(d.lower() in said for d in (distro, written)) and version.lower() in said:
        return ""
    return f"{written} {version}".strip()


def mail_context(
    notice: NoticeMessage,
    site: Site | None = None,
    policy: PolicySettings | None = None,
    *,
    now: datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The variables every mail template gets. Pure.

    ``notice`` (the model), ``kind`` (its :class:`~reclaim.notices.kinds.Kind`), ``resource``
    (label), ``name``, ``project`` (the project's name and id, :func:`project_label`),
    ``project_name`` (its name alone, for subjects),
    ``servers`` (the servers the notice lists, :func:`server_labels`), ``os`` (an image's
    operating system, :func:`os_label`), ``due`` / ``due_date`` (long and ISO dates of the action), ``notice_date``,
    ``days_left`` (from the mail's rendering at ``now``, the mailer's clock, to the action; see
    :func:`days_left`), ``passed`` (the action's date is not ahead at ``now``: the mail went
    out late, see :func:`date_passed`), ``first_warning`` (when ``passed``: the long date
    before which the action cannot happen if this warning is the first delivered, see
    :func:`first_warning_floor`; else empty), ``delay`` (the period of the
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
        "project": project_label(notice),
        "project_name": project_name(notice),
        "servers": server_labels(d),
        "os": os_label(d, notice.resource_name or d.get("image_name", "")),
        "due": long_date(notice.due_at),
        "due_date": short_date(notice.due_at),
        "notice_date": short_date(notice.notice_at),
        "days_left": days_left(notice, now),
        "passed": date_passed(notice, now),
        "first_warning": long_date(first_warning_floor(notice, now)),
        "delay": rule_delay(notice, policy),
        "policy": policy,
        "detail": d,
        "when": when,
        "clause": notice.clause,
        "site": site,
        "recipient": None,
        **extra,
    }
