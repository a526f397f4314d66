"""The project page: every scheduled action on a project's resources, for its members.

``GET /projects`` lists the projects the signed-in person may see (their Keystone role
assignments, :mod:`reclaim.web.session`) with how many actions are scheduled on each;
``GET /projects/{project_id}`` shows one project's scheduled actions, sorted on the server
by ``?sort=due|resource|action`` and ``&order=asc|desc``. Each row opens the resource's
page; each row also carries the resource page's "keep it" and "ask for an exemption" forms,
posted to that page's own handlers (the sign-in's access check lets members use them), so
the answer shows on the resource's page. A project the person holds no role on
is refused with the same answer whether or not it exists; operators may see any.

The pending timers come from the store's due index (one pass, filtered by project): no
scan, and nothing of another project is read into a page.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from reclaim.timers import Timer
from reclaim.web.app import Web, web_of
from reclaim.web.requests import ExemptionRequests, Extensions, offer
from reclaim.web.resource import _LABELS, Scheduled, scheduled
from reclaim.web.session import SignedIn, require

SortKey = Literal["due", "resource", "action"]
SORTS: tuple[SortKey, ...] = ("due", "resource", "action")


@dataclass(frozen=True)
class Row:
    """One scheduled action as the project page lists it."""

    item: Scheduled
    label: str
    name: str
    #: the viewer's exemption request on this resource: "" (none), pending, approved, refused
    asked: str = ""
    may_ask: bool = False

    @property
    def timer(self) -> Timer:
        return self.item.timer


def label_of(resource_type: str) -> str:
    """How a page names a type of resource ("Server"), as the resource page does. Pure."""
    return _LABELS.get(resource_type, resource_type.replace("_", " ").capitalize())


def rows_of(timers: Iterable[Timer], web: Web) -> list[Row]:
    """The page's rows for these pending timers (unsorted). Pure."""
    floor = web.settings.sweep.min_notice_lead
    return [
        Row(scheduled(t, floor), label_of(t.resource_type), str(t.detail.get("name", "")))
        for t in timers
        if t.state == "pending" and t.due_at is not None
    ]


def _due(row: Row) -> tuple[bool, datetime | None]:
    return (row.item.when is None, row.item.when)


def sort_rows(rows: list[Row], key: SortKey, descending: bool = False) -> list[Row]:
    """Rows ordered by due date, resource (name, then id) or action, ties by due date. Pure."""
    by_due = sorted(rows, key=lambda r: (r.item.when is None, r.item.when or datetime.min))
    if key == "resource":
        ordered = sorted(
            by_due, key=lambda r: ((r.name or r.timer.resource_id).casefold(), r.timer.resource_id)
        )
    elif key == "action":
        ordered = sorted(by_due, key=lambda r: r.item.done_as)
    else:
        ordered = by_due
    return list(reversed(ordered)) if descending else ordered


def project_timers(web: Web, project_ids: frozenset[str]) -> dict[str, list[Timer]]:
    """The pending timers of each project named, from one pass over the due index."""
    out: dict[str, list[Timer]] = {p: [] for p in project_ids}
    for timer in web.store.pending():
        if timer.project_id in out:
            out[timer.project_id].append(timer)
    return out


def _nav(me: SignedIn) -> dict[str, object]:
    return {"me": me}


def with_actions(rows: list[Row], timers: list[Timer], web: Web, who: str) -> list[Row]:
    """The rows with what the resource page would offer on each: "keep it" (its limits
    counted as there) and whether ``who`` may still ask for an exemption."""
    if not rows:
        return rows
    settings = web.settings
    now = web.now()
    project = rows[0].timer.project_id
    grants = (
        Extensions(web.store).count(project, now - settings.web.extension_window) if project else 0
    )
    by_resource: dict[tuple[str, str], list[Timer]] = {}
    for t in timers:
        by_resource.setdefault((t.resource_type, t.resource_id), []).append(t)
    asked = {
        (r.resource_type, r.resource_id): r.state
        for r in ExemptionRequests(web.store).all()
        if r.requested_by == who
    }
    floor = settings.sweep.min_notice_lead
    out = []
    for row in rows:
        t = row.timer
        key = (t.resource_type, t.resource_id)
        can = offer(t, settings, now, by_resource[key], grants)
        out.append(
            Row(
                scheduled(t, floor, can),
                row.label,
                row.name,
                asked=asked.get(key, ""),
                may_ask=settings.web.exemption_requests
                and t.resource_type == "server"
                and key not in asked,
            )
        )
    return out


def projects_page(request: Request) -> Response:
    """The projects the signed-in person may see, and what is scheduled on each."""
    me = require(request)
    if isinstance(me, Response):
        return me
    web = web_of(request)
    timers = project_timers(web, frozenset(me.projects))
    listed = []
    for project_id, name in sorted(me.projects.items(), key=lambda p: (p[1].casefold(), p[0])):
        rows = sort_rows(rows_of(timers[project_id], web), "due")
        listed.append(
            {
                "id": project_id,
                "name": name,
                "count": len(rows),
                "next": rows[0].item.when if rows else None,
            }
        )
    return web.render(request, "projects.html", {**_nav(me), "projects": listed})


def project_page(request: Request) -> Response:
    """One project's scheduled actions, sorted as the query string asks."""
    me = require(request)
    if isinstance(me, Response):
        return me
    project_id = request.path_params["project_id"]
    if not me.may_see(project_id):
        raise HTTPException(
            403,
            "This project is not one of yours: you hold no role on it in Keystone. Your "
            "projects are listed on your projects page.",
        )
    web = web_of(request)
    sort = request.query_params.get("sort", "due")
    key: SortKey = sort if sort in SORTS else "due"
    descending = request.query_params.get("order") == "desc"
    timers = project_timers(web, frozenset({project_id}))[project_id]
    rows = with_actions(sort_rows(rows_of(timers, web), key, descending), timers, web, me.who)
    name = me.projects.get(project_id, "")
    return web.render(
        request,
        "project.html",
        {
            **_nav(me),
            "project_id": project_id,
            "project_name": name,
            "rows": rows,
            "sort": key,
            "descending": descending,
            "sorts": SORTS,
        },
    )


routes: list[BaseRoute] = [
    Route("/projects", projects_page, methods=["GET"]),
    Route("/projects/{project_id}", project_page, methods=["GET"]),
]
