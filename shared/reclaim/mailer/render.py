"""Mail bodies from Jinja2 templates: one template per kind, a text and an HTML layout.

A kind's template (``<kind>.j2``) extends ``layout`` and fills two blocks: ``subject`` (one
line) and ``body`` (plain text: paragraphs separated by blank lines, ``- `` lines are a
list). It is rendered twice: in a plain-text environment through ``_layout.txt.j2``, and
in an autoescaping environment through ``_layout.html.j2``, which turns the paragraphs into
HTML. A kind without a template gets ``_generic.j2``. Templates in the operator's directory
win over the built-in ones of the same name.

Mails about a resource carry ``link``, the signed link to its page for that recipient
(``reclaim web``; "" when ``web.secret_key`` or ``web.base_url`` is not set): the layouts
show it; the ``linked`` filter writes a URL as a link in HTML and as itself in text.

Periods are never written into a template: a notice's own period is ``delay`` (carried by
the notice), another rule's comes from ``policy`` (the mailer's configuration), and both are
written with the ``duration`` filter (``2 weeks``, ``180 days``).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from markupsafe import Markup, escape

from reclaim.durations import human_duration, parse_duration
from reclaim.mailer.addresses import Person
from reclaim.notices import NoticeMessage
from reclaim.notices.context import Site, long_date, mail_context, or_list

if TYPE_CHECKING:
    from reclaim.settings import PolicySettings
    from reclaim.web.links import LinkMaker

BUILTIN = Path(__file__).parent / "templates"
GENERIC = "_generic.j2"
#: Text mails are wrapped at this many columns.
WIDTH = 72
#: List items that are commands to copy: never wrapped.
_COMMANDS = ("openstack ", "reclaim ")


@dataclass(frozen=True)
class Rendered:
    """A mail's subject and its two bodies."""

    subject: str
    text: str
    html: str


def paragraphs_to_html(body: str) -> Markup:
    """Blank-line separated paragraphs as ``<p>``; blocks of ``- `` lines as ``<ul>``.

    ``body`` is already escaped (it comes from the autoescaping environment). Pure.
    """
    out: list[str] = []
    for block in str(body).strip().split("\n\n"):
        lines = [line.strip() for line in block.strip().splitlines() if line.strip()]
        text: list[str] = []
        items: list[str] = []
        for line in [*lines, ""]:
            if line.startswith("- "):
                if text:
                    out.append("<p>" + "<br>\n".join(text) + "</p>")
                    text = []
                items.append(f"<li>{line[2:]}</li>")
                continue
            if items:
                out.append("<ul>" + "".join(items) + "</ul>")
                items = []
            if line:
                text.append(line)
        if text:
            out.append("<p>" + "<br>\n".join(text) + "</p>")
    return Markup("\n".join(out))


def _anchor(url: Any, label: str = "") -> Markup:
    """The ``linked`` filter of HTML mails: ``<a href="url">label</a>`` (escaped). Pure."""
    return Markup('<a href="{}">{}</a>').format(str(url), label or str(url))


def duration(value: Any) -> str:
    """The ``duration`` filter: a timedelta (or ``14d``) as :func:`human_duration` writes it;
    empty for None or undefined, a string that is no duration as it is."""
    if isinstance(value, str) and value:
        text: str = value
        try:
            return human_duration(parse_duration(text))
        except ValueError:
            return text
    return human_duration(value) if isinstance(value, timedelta) else ""


class Renderer:
    """Renders notices (and digests) for one recipient.

    ``policy``: the mailer's own policy settings, which templates use for the periods a
    notice does not carry (another rule's, as a shelve mail saying when shelved servers are
    deleted). They are the MAILER's configuration, and right only if it matches the
    sweeper's; when not given they are read from it (``load_settings().policy``: the
    ``RECLAIM_POLICY__*`` variables and the config file the sweeper reads too).
    """

    def __init__(
        self,
        override: str | Path | None = None,
        site: Site | None = None,
        policy: PolicySettings | None = None,
        links: LinkMaker | None = None,
    ) -> None:
        if policy is None:
            from reclaim.settings import load_settings

            policy = load_settings().policy
        self.site = site or Site()
        self.policy = policy
        self.links = links
        dirs = [str(override)] if override else []
        loader = jinja2.FileSystemLoader([*dirs, str(BUILTIN)])
        common: dict[str, Any] = {
            "loader": loader,
            "undefined": jinja2.ChainableUndefined,
            "keep_trailing_newline": False,
            "trim_blocks": True,
            "lstrip_blocks": True,
        }
        self.text_env = jinja2.Environment(autoescape=False, **common)
        self.html_env = jinja2.Environment(autoescape=True, **common)
        self.text_env.filters["linked"] = lambda url, label="": str(url)
        self.html_env.filters["linked"] = _anchor
        for env in (self.text_env, self.html_env):
            env.filters["paragraphs"] = paragraphs_to_html
            env.filters["long_date"] = long_date
            env.filters["duration"] = duration
            env.filters["or_list"] = or_list

    def template_for(self, kind: str) -> str:
        """The template name used for ``kind`` (its own, or the generic one)."""
        name = f"{kind}.j2"
        try:
            self.text_env.get_template(name)
        except jinja2.TemplateNotFound:
            return GENERIC
        return name

    def _render(self, name: str, variables: dict[str, Any]) -> Rendered:
        text_t = self.text_env.get_template(name)
        subject_ctx = text_t.new_context({**variables, "layout": "_layout.txt.j2"})
        subject = " ".join("".join(text_t.blocks["subject"](subject_ctx)).split())
        text = text_t.render(**variables, layout="_layout.txt.j2")
        html = self.html_env.get_template(name).render(
            **variables, layout="_layout.html.j2", subject=subject
        )
        return Rendered(subject, _tidy(text), html.strip() + "\n")

    def render(
        self, notice: NoticeMessage, recipient: Person | None = None, now: datetime | None = None
    ) -> Rendered:
        """Subject, text and HTML of ``notice`` for ``recipient``, as of ``now`` (the mailer's
        clock; None: as of the notice's publication). A notice whose date is past at ``now``
        says so instead of announcing it (``passed``, see :func:`mail_context`)."""
        variables = mail_context(
            notice, self.site, self.policy, now=now, recipient=recipient,
            link=self._link(notice, recipient),
        )  # fmt: skip
        return self._render(self.template_for(notice.kind), variables)

    def _link(self, notice: NoticeMessage, recipient: Person | None) -> str:
        """The signed link to the notice's page for ``recipient`` ("" for none)."""
        return self.links(notice, recipient) if self.links is not None else ""

    def render_digest(
        self, notices: list[NoticeMessage], recipient: Person | None, now: datetime | None = None
    ) -> Rendered:
        """One mail gathering ``notices`` (in due order) for ``recipient``, as of ``now``."""
        ordered = sorted(notices, key=lambda n: (n.due_at is None, n.due_at, n.notice_id))
        items = [
            mail_context(
                n,
                self.site,
                self.policy,
                now=now,
                recipient=recipient,
                link=self._link(n, recipient),
            )
            for n in ordered
        ]
        variables = {"items": items, "site": self.site, "policy": self.policy}
        return self._render("_digest.j2", {**variables, "recipient": recipient})


def wrap(line: str, width: int = WIDTH) -> str:
    """``line`` wrapped at ``width`` columns: a ``- `` item and an indented line keep their
    indent on every line; words are never broken (a URL, an address or an id longer than a
    line stays whole), nor is a list item that is a command to copy. Pure."""
    if len(line) <= width or line == "-- ":
        return line
    body = line.lstrip(" ")
    indent = line[: len(line) - len(body)]
    first = rest = indent
    if body.startswith("- "):
        if body[2:].startswith(_COMMANDS):
            return line
        first, rest, body = indent + "- ", indent + "  ", body[2:]
    return textwrap.fill(
        body, width, initial_indent=first, subsequent_indent=rest,
        break_long_words=False, break_on_hyphens=False,
    )  # fmt: skip


def _tidy(text: str) -> str:
    """Collapse runs of blank lines left by template tags; wrap at :data:`WIDTH` columns."""
    lines = [line if line == "-- " else line.rstrip() for line in text.strip().splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(wrap(line))
    return "\n".join(out) + "\n"


__all__ = [
    "BUILTIN",
    "GENERIC",
    "Rendered",
    "Renderer",
    "duration",
    "escape",
    "paragraphs_to_html",
    "wrap",
]
