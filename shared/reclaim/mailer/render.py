"""Mail bodies from Jinja2 templates: one template per kind, a text and an HTML layout.

A kind's template (``<kind>.j2``) extends ``layout`` and fills two blocks: ``subject`` (one
line) and ``body`` (plain text: paragraphs separated by blank lines, ``- `` lines are a
list). It is rendered twice: in a plain-text environment through ``_layout.txt.j2``, and
in an autoescaping environment through ``_layout.html.j2``, which turns the paragraphs into
HTML. A kind without a template gets ``_generic.j2``. Templates in the operator's directory
win over the built-in ones of the same name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from reclaim.mailer.addresses import Person
from reclaim.notices import NoticeMessage
from reclaim.notices.context import Site, long_date, mail_context

BUILTIN = Path(__file__).parent / "templates"
GENERIC = "_generic.j2"


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


class Renderer:
    """Renders notices (and digests) for one recipient."""

    def __init__(self, override: str | Path | None = None, site: Site | None = None) -> None:
        self.site = site or Site()
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
        for env in (self.text_env, self.html_env):
            env.filters["paragraphs"] = paragraphs_to_html
            env.filters["long_date"] = long_date

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

    def render(self, notice: NoticeMessage, recipient: Person | None = None) -> Rendered:
        """Subject, text and HTML of ``notice`` for ``recipient``."""
        variables = mail_context(notice, self.site, recipient=recipient)
        return self._render(self.template_for(notice.kind), variables)

    def render_digest(self, notices: list[NoticeMessage], recipient: Person | None) -> Rendered:
        """One mail gathering ``notices`` (in due order) for ``recipient``."""
        ordered = sorted(notices, key=lambda n: (n.due_at is None, n.due_at, n.notice_id))
        items = [mail_context(n, self.site, recipient=recipient) for n in ordered]
        return self._render(
            "_digest.j2", {"items": items, "site": self.site, "recipient": recipient}
        )


def _tidy(text: str) -> str:
    """Collapse runs of blank lines left by template tags."""
    lines = [line if line == "-- " else line.rstrip() for line in text.strip().splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out) + "\n"


__all__ = ["BUILTIN", "GENERIC", "Rendered", "Renderer", "escape", "paragraphs_to_html"]
