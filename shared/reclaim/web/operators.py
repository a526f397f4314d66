"""The operators' page: what needs a person's eye, and the decisions only operators make.

``GET /operators`` (the ``web.operator_role`` role, :mod:`reclaim.web.session`) shows

* the circuit breaker (:class:`reclaim.sweeper.breaker.Breaker`): open or closed, why, and
  the last reset; ``POST /operators/breaker/reset`` closes it, with a reason;
* exemption requests (:mod:`reclaim.web.requests`): the pending ones, each approved or
  refused with a reason (``POST /operators/requests/{id}``), and the latest decisions;
* actions postponed at their people's request ("keep it"), with who asked and why;
* actions held (waiting for a warning to reach someone, a hold, a finished shelve...) and
  actions failing (tried and not done yet);
* actions due in the next 7 days;
* dead letters (:mod:`reclaim.deadletters`), read-only: ``reclaim deadletters replay``
  replays them through the bus.

Every change is audited with who made it and why: a breaker reset in the breaker's item
(``reset_by``, ``reset_reason``), a decision in the request and in the audit of the
server's timers (:func:`reclaim.web.requests.approve`), and each in the log.

The timers come from one pass over the due index. Timers marked failed leave that index
(their run is closed, with an operator alert when it happened), so they are not listed here:
``reclaim audit`` shows a resource's history.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from reclaim.deadletters import DeadLetterStore
from reclaim.sweeper.breaker import Breaker
from reclaim.sweeper.cloud import CloudError
from reclaim.timers import Timer
from reclaim.web.app import Web, flash, web_of, with_form
from reclaim.web.projects import Row, rows_of, sort_rows
from reclaim.web.requests import (
    DecisionError,
    ExemptionRequest,
    ExemptionRequests,
    approve,
    clean_reason,
    refuse,
)
from reclaim.web.session import SignedIn, require

#: How far ahead "due soon" looks.
SOON = timedelta(days=7)
#: Decided requests shown (latest first).
DECIDED_SHOWN = 20
#: Dead letters shown (latest first).
LETTERS_SHOWN = 50

log = logging.getLogger("reclaim.web")


@dataclass(frozen=True)
class Postponed:
    """An action moved later at its people's request, with who asked and why."""

    row: Row
    by: str
    reason: str
    postponed: str
    at: datetime | None


def postponed_of(row: Row) -> Postponed:
    """The latest granted extension in the timer's audit (pure)."""
    grants = [e for e in row.timer.history if e.what == "extend" and e.outcome == "granted"]
    last = grants[-1] if grants else None
    detail = last.detail if last else {}
    return Postponed(
        row,
        str(detail.get("by", "")),
        str(detail.get("reason", "")),
        str(detail.get("postponed", "")),
        last.at if last else None,
    )


def sections(rows: list[Row], now: datetime) -> dict[str, Any]:
    """The timer sections of the page from every pending row (pure)."""
    ordered = sort_rows(rows, "due")
    return {
        "held": [r for r in ordered if r.item.held],
        "failing": [r for r in ordered if r.timer.attempts > 0],
        "soon": [r for r in ordered if r.item.when is not None and r.item.when <= now + SOON],
        "postponed": [postponed_of(r) for r in ordered if r.timer.extension],
    }


def _instant(text: str) -> datetime | None:
    """A stored ISO time, or None (pure)."""
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def operator(request: Request) -> SignedIn | Response:
    """The signed-in operator; others are refused, signed-out visitors sent to sign in."""
    me = require(request)
    if isinstance(me, SignedIn) and not me.operator:
        raise HTTPException(403, "This page is for the cloud's operators.")
    return me


def _pending(web: Web) -> list[Timer]:
    return list(web.store.pending())


def operators_page(request: Request) -> Response:
    """Everything an operator looks at, on one page."""
    me = operator(request)
    if isinstance(me, Response):
        return me
    web = web_of(request)
    now = web.now()
    requests = ExemptionRequests(web.store).all()
    decided = sorted(
        (r for r in requests if r.state != "pending"),
        key=lambda r: r.decided_at or r.requested_at,
        reverse=True,
    )[:DECIDED_SHOWN]
    letters = DeadLetterStore.beside(web.store).list()
    return web.render(
        request,
        "operators.html",
        {
            "me": me,
            "breaker": (breaker := Breaker(web.store).status()),
            "opened_at": _instant(breaker.opened_at),
            "reset_at": _instant(breaker.reset_at),
            "asked": [r for r in requests if r.state == "pending"],
            "decided": decided,
            "letters": list(reversed(letters))[:LETTERS_SHOWN],
            "letters_total": len(letters),
            "can_approve": web.cloud is not None,
            "soon_days": SOON.days,
            **sections(rows_of(_pending(web), web), now),
        },
    )


def _back(request: Request, anchor: str) -> Response:
    return RedirectResponse(f"{request.scope.get('root_path', '')}/operators#{anchor}", 303)


def reset_breaker(request: Request, form: FormData) -> Response:
    """Close the breaker, with the operator's reason."""
    me = operator(request)
    if isinstance(me, Response):
        return me
    web = web_of(request)
    why = clean_reason(str(form.get("reason", "")))
    if not why:
        flash(request, "Say why the breaker may be closed; it was left as it was.")
        return _back(request, "breaker")
    before = Breaker(web.store).reset(web.now(), me.who, why)
    log.info("breaker reset by %s: %s (was %s)", me.who, why, "open" if before.open else "closed")
    flash(
        request,
        "The breaker is closed: destructive actions resume on the next sweep."
        if before.open
        else "The breaker was closed already; your reason is recorded.",
    )
    return _back(request, "breaker")


def decide(request: Request, form: FormData) -> Response:
    """Approve or refuse one exemption request, with the operator's reason."""
    me = operator(request)
    if isinstance(me, Response):
        return me
    web = web_of(request)
    decision = str(form.get("decision", ""))
    why = str(form.get("reason", ""))
    found: ExemptionRequest | None = ExemptionRequests(web.store).get(
        request.path_params["request_id"]
    )
    if found is None:
        raise HTTPException(404, "There is no such request.")
    if decision not in ("approve", "refuse"):
        raise HTTPException(400, "Choose approve or refuse.")
    if not clean_reason(why):
        flash(request, "Say why; the request was left undecided.")
        return _back(request, "requests")
    try:
        if decision == "approve":
            done = approve(web.store, web.settings, web.cloud, found, me.who, why, web.now())
        else:
            done = refuse(web.store, found, me.who, why, web.now())
    except DecisionError as exc:
        flash(request, f"Not done: {exc}.")
        return _back(request, "requests")
    except CloudError as exc:
        log.warning("exemption %s not written: %s", found.request_id, exc)
        flash(request, "The cloud did not take the exemption; the request is still open.")
        return _back(request, "requests")
    log.info("exemption request %s %s by %s: %s", done.request_id, done.state, me.who, done.why)
    name = found.resource_name or found.resource_id
    flash(request, f"The request for {name} is {done.state}.")
    return _back(request, "requests")


routes: list[BaseRoute] = [
    Route("/operators", operators_page, methods=["GET"]),
    Route("/operators/breaker/reset", with_form(reset_breaker), methods=["POST"]),
    Route("/operators/requests/{request_id}", with_form(decide), methods=["POST"]),
]
