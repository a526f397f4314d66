"""The resource page: what will happen to one resource and when, why, and what its people
may do about it (keep it for longer, ask for an exemption).

``GET /l/{token}`` opens a mail's link (:mod:`reclaim.web.links`): the grant goes into the
session and the browser is sent on to ``GET /resource/{type}/{id}``, which shows the page to
a visitor whom some access check lets see it (:meth:`reclaim.web.app.Web.viewer`). Its
project is named as the visitor's sign-in names it, else as Keystone does
(:meth:`reclaim.web.app.Web.project_name`), else by its id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from reclaim.durations import human_duration
from reclaim.notices.context import long_date
from reclaim.notices.kinds import kind_of
from reclaim.sweeper.sweep import planned_date
from reclaim.timers import Timer
from reclaim.web.app import Viewer, Web, flash, web_of, with_form
from reclaim.web.links import BadLink, link_access, remember, verify
from reclaim.web.requests import (
    ExemptionRequests,
    Extensions,
    Offer,
    ask_exemption,
    keep,
    offer,
    request_id,
)

#: What a person reads for an action that will be done ("will be shelved on ...").
DONE_AS = {
    "shelve": "shelved",
    "delete": "deleted",
    "cleanup": "deleted, with everything the project holds",
    "delete_images": "deleted",
    "remove_rule": "removed",
}
#: What a state in a timer's detail reads as in a sentence ("stopped since ...").
STATE_AS = {"stopped": "stopped", "suspended": "suspended", "shelved": "shelved",
            "shelved_offloaded": "shelved"}  # fmt: skip
_LABELS = {"server": "Server", "project": "Project", "image": "Image",
           "security_group_rule": "Security group rule", "user": "User"}  # fmt: skip

#: What people asked and operators decided, as the page lists it (from the timer's audit).
_ASKED = {
    ("extend", "granted"): "postponed by {postponed} at the request of {by}",
    ("exemption", "requested"): "exemption asked for by {by}",
    ("exemption", "approved"): "exemption approved by {by}",
    ("exemption", "refused"): "exemption refused by {by}",
}

#: The access checks this module adds: mail links.
access = link_access


@dataclass(frozen=True)
class Scheduled:
    """One pending action on the page, with what explains it."""

    timer: Timer
    when: datetime | None
    held: str
    done_as: str
    period: str
    evidence: str
    notices: list[tuple[str, datetime]]
    offer: Offer | None = None
    asked: list[tuple[datetime, str]] = field(default_factory=list)


def scheduled(timer: Timer, floor: timedelta, can: Offer | None = None) -> Scheduled:
    """A pending timer as the page tells it. Pure."""
    when, held = planned_date(timer, floor)
    state = timer.detail.get("state", "")
    evidence = ""
    if timer.since is not None:
        what = STATE_AS.get(state, state.replace("_", " "))
        evidence = f"{what} since {timer.since:%Y-%m-%d}" if what else ""
    sent = sorted(
        ((kind_of(n.kind).summary, n.sent_at) for n in timer.notices if n.sent_at is not None),
        key=lambda x: x[1],
    )
    asked = [
        (e.at, _ASKED[(e.what, e.outcome)].format(**{"postponed": "", "by": "", **e.detail}))
        for e in timer.history
        if (e.what, e.outcome) in _ASKED and (timer.since is None or e.at >= timer.since)
    ]
    return Scheduled(
        timer=timer,
        when=when,
        held=held,
        done_as=DONE_AS.get(timer.action, timer.action),
        period=human_duration(timer.delay) if timer.delay else "",
        evidence=evidence,
        notices=sent,
        offer=can,
        asked=asked,
    )


def limit_use(request: Request) -> None:
    """Count one use of a link or a form from the visitor's address (``web.links_per_address``,
    in this process's memory); 429 past it."""
    from limits import parse as parse_limit
    from limits.storage import MemoryStorage
    from limits.strategies import MovingWindowRateLimiter

    state = request.app.state
    if getattr(state, "link_limits", None) is None:
        rate = parse_limit(web_of(request).settings.web.links_per_address)
        state.link_limits = (MovingWindowRateLimiter(MemoryStorage()), rate)
    limiter, rate = state.link_limits
    address = request.client.host if request.client else "unknown"
    if not limiter.hit(rate, "link", address):
        raise HTTPException(
            429, "Too many pages opened from your address in a short time. Wait a minute and retry."
        )


def _resource(request: Request) -> tuple[str, str]:
    return request.path_params["resource_type"], request.path_params["resource_id"]


def lookup(web: Web, request: Request) -> tuple[list[Timer], Viewer]:
    """The resource's timers and who is looking; 403 when no check lets them see it (the
    same answer whether or not the resource exists, so ids cannot be probed)."""
    resource_type, resource_id = _resource(request)
    timers = web.store.timers_for(resource_type, resource_id)
    project_id = next((t.project_id for t in timers if t.project_id), None)
    viewer = web.viewer(request, resource_type, resource_id, project_id)
    if viewer is None:
        raise HTTPException(
            403,
            "This page is not one your link opens: a link shows only the resource its mail "
            "was about. Open the link from that mail again.",
        )
    return timers, viewer


def open_link(request: Request) -> Response:
    """A mail's link: remember its grant in the session, then show the resource's page."""
    limit_use(request)
    web = web_of(request)
    now = web.now()
    try:
        grant = verify(request.path_params["token"], web.settings.web.secret_key, now)
    except BadLink as exc:
        raise HTTPException(exc.status, exc.message) from exc
    remember(request.session, grant, now)
    target = (
        f"{request.scope.get('root_path', '')}/resource/"
        f"{quote(grant.resource_type, safe='')}/{quote(grant.resource_id, safe='')}"
    )
    return RedirectResponse(target, status_code=303)


def page_context(web: Web, request: Request, timers: list[Timer], viewer: Viewer) -> dict[str, Any]:
    """What ``resource.html`` shows."""
    resource_type, resource_id = _resource(request)
    settings = web.settings
    now = web.now()
    floor = settings.sweep.min_notice_lead
    project = next((t.project_id for t in timers if t.project_id), None)
    live = [t for t in timers if t.state == "pending" and t.due_at]
    grants = (
        Extensions(web.store).count(project, now - settings.web.extension_window)
        if project and live
        else 0
    )
    pending = [scheduled(t, floor, offer(t, settings, now, timers, grants)) for t in live]
    pending.sort(key=lambda s: (s.when is None, s.when))
    named = next((t.detail.get("name", "") for t in timers if t.detail.get("name")), "")
    asked = ExemptionRequests(web.store).get(request_id(resource_type, resource_id, viewer.who))
    return {
        "label": _LABELS.get(resource_type, resource_type.replace("_", " ").capitalize()),
        "resource_type": resource_type,
        "resource_id": resource_id,
        "name": named,
        "project_id": project,
        "project_name": (viewer.project_name or web.project_name(project)) if project else "",
        "pending": pending,
        "viewer": viewer,
        "asked": asked,
        "may_ask": bool(
            settings.web.exemption_requests and resource_type == "server" and live and not asked
        ),
        "base": f"{request.scope.get('root_path', '')}/resource/{resource_type}/{resource_id}",
    }


def resource_page(request: Request) -> Response:
    """What will happen to the resource, when and why, and what the visitor may do."""
    web = web_of(request)
    timers, viewer = lookup(web, request)
    return web.render(request, "resource.html", page_context(web, request, timers, viewer))


def _back(request: Request) -> Response:
    resource_type, resource_id = _resource(request)
    root = request.scope.get("root_path", "")
    return RedirectResponse(f"{root}/resource/{resource_type}/{resource_id}", status_code=303)


def keep_it(request: Request, form: FormData) -> Response:
    """ "Keep it": postpone one scheduled action once, for a reason (see
    :func:`reclaim.web.requests.keep`); back to the page, which says what happened."""
    limit_use(request)
    web = web_of(request)
    timers, viewer = lookup(web, request)
    rule = str(form.get("rule", ""))
    timer = next((t for t in timers if t.rule == rule and t.state == "pending"), None)
    if timer is None:
        flash(request, "Nothing is scheduled for that any more.")
        return _back(request)
    kept = keep(web.store, web.settings, web.notices, timer, viewer.who,
                str(form.get("reason", "")), web.now())  # fmt: skip
    if kept.granted and kept.timer is not None:
        done_as = DONE_AS.get(kept.timer.action, kept.timer.action)
        flash(request, f"{kept.message} It will now be {done_as} on "
                       f"{long_date(kept.new_date)}.")  # fmt: skip
    else:
        flash(request, kept.message)
    return _back(request)


def ask_exempt(request: Request, form: FormData) -> Response:
    """Ask the operators to exempt the server (see :func:`reclaim.web.requests.ask_exemption`)."""
    limit_use(request)
    web = web_of(request)
    timers, viewer = lookup(web, request)
    live = [t for t in timers if t.state == "pending"]
    resource_type, _rid = _resource(request)
    if not (web.settings.web.exemption_requests and resource_type == "server" and live):
        raise HTTPException(403, "Exemptions cannot be asked for this resource here.")
    _ok, message = ask_exemption(web.store, web.notices, live[0], viewer.who,
                                 str(form.get("reason", "")), web.now())  # fmt: skip
    flash(request, message)
    return _back(request)


routes: list[BaseRoute] = [
    Route("/l/{token}", open_link, methods=["GET"]),
    Route("/resource/{resource_type}/{resource_id}", resource_page, methods=["GET"]),
    Route("/resource/{resource_type}/{resource_id}/keep", with_form(keep_it), methods=["POST"]),
    Route(
        "/resource/{resource_type}/{resource_id}/exempt", with_form(ask_exempt), methods=["POST"]
    ),
]
