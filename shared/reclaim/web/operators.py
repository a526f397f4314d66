"""The operators' page: what needs a person's eye, and the decisions only operators make.

``GET /operators`` (the ``web.operator_role`` role, :mod:`reclaim.web.session`) shows

* the circuit breaker (:class:`reclaim.sweeper.breaker.Breaker`): open or closed, why, and
  the last reset; ``POST /operators/breaker/reset`` closes it, with a reason;
* exemption requests (:mod:`reclaim.web.requests`): the pending ones, each approved or
  refused with a reason (``POST /operators/requests/{id}``), and the latest decisions;
* actions postponed at their people's request ("keep it"), with who asked and why;
* actions held (waiting for a warning to reach someone, a hold, a finished shelve...) and
  actions failing (tried and not done yet);
* actions that failed for good (:func:`failed_timers`): resource, rule, reason, since when,
  and the commands an operator runs about them (``reclaim audit``, ``reclaim reconcile``);
* actions due in the next 7 days;
* dead letters (:mod:`reclaim.deadletters`), latest first, read-only: when, event type,
  why, the head of the message (:func:`letter_of`: secrets masked, cut short, escaped as
  every text is) and the ``reclaim deadletters replay`` command for each. The page does
  not replay them itself: a replay runs the policy and writes timers with batched reads the
  web's own role (``template.yaml``) is not given, and replays a letter however often asked.

Every change is audited with who made it and why: a breaker reset in the breaker's item
(``reset_by``, ``reset_reason``), a decision in the request and in the audit of the
server's timers (:func:`reclaim.web.requests.approve`), and each in the log.

The pending timers come from one pass over the due index. Timers marked failed leave that
index (their run is closed, with an operator alert when it happened): they are found by a
scan of the table that sends back only the items holding one (:func:`failed_timers`), the
page's one read that grows with the table. The list is read-only: no store operation
retries a failed action. ``reclaim reconcile`` re-reads the resource and starts a new run
if the rule still holds (the sweeper then tries again); an event about the resource does
the same, or ends it.
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from reclaim.deadletters import DeadLetter, DeadLetterStore
from reclaim.redact import MASK, scrub_text
from reclaim.store import DynamoTimerStore, StoreError
from reclaim.store.dynamodb import TIMERS_SK, decode_item
from reclaim.sweeper.breaker import Breaker
from reclaim.sweeper.cloud import CloudError
from reclaim.timers import Timer
from reclaim.web.app import Web, flash, web_of, with_form
from reclaim.web.projects import Row, label_of, rows_of, sort_rows
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
#: Actions failed for good shown (latest first).
FAILED_SHOWN = 50
#: Characters of a reason shown.
SHOWN_TEXT = 300
#: Characters of a dead letter's message shown (its head), and of its event type.
HEAD_SHOWN = 160
EVENT_TYPE_SHOWN = 80
#: A run of token-like characters too long for an id (a UUID is 36): a Keystone token, a
#: key, a secret with no name in front that :func:`reclaim.redact.scrub_text` would know.
_OPAQUE = re.compile(r"[A-Za-z0-9_\-+/=]{40,}")
#: Items one scan page reads, and the seconds the page spends scanning for failed actions
#: before it shows what it found (a large table: the page still answers in time).
SCAN_PAGE = 1000
SCAN_BUDGET = 10.0
#: Resource types whose timers ``reclaim reconcile`` rebuilds from the cloud.
RECONCILED = frozenset({"server", "image", "project"})
#: How a failed timer shows in a stored item's JSON (``doc``): what the scan filters on.
_FAILED_IN_DOC = '"state":"failed"'
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

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


@dataclass(frozen=True)
class Failed:
    """An action that failed for good, and what an operator runs about it."""

    timer: Timer
    label: str
    name: str
    reason: str
    at: datetime | None
    commands: tuple[tuple[str, str], ...]


def shortened(text: str, limit: int = SHOWN_TEXT) -> str:
    """``text`` cut to ``limit`` characters, an ellipsis saying it was. Pure."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def visible(text: str) -> str:
    """``text`` on one line, with nothing invisible: every run of blanks one space, control
    and format characters (bidirectional overrides, zero widths) shown as U+FFFD. Pure."""
    return "".join(
        c if unicodedata.category(c)[0] != "C" else "\ufffd" for c in " ".join(text.split())
    )


@dataclass(frozen=True)
class Letter:
    """A dead letter as the page shows it: every text from the message masked and short."""

    id: str
    received_at: datetime
    stage: str
    event_type: str
    reason: str
    head: str
    size: int
    truncated: bool
    deliveries: int
    replay: str


def masked(text: str) -> str:
    """``text`` without secrets: named ones (:func:`reclaim.redact.scrub_text`) and long
    token-like runs masked. Pure."""
    return _OPAQUE.sub(MASK, scrub_text(text))


def letter_of(letter: DeadLetter) -> Letter:
    """What the page shows of ``letter``: its reason, event type and the head of its body
    with secrets masked, on one line, cut short (the body is whoever sent it's). Pure."""
    if letter.body_encoding == "base64":
        head = "(not text)"
    else:
        head = shortened(visible(masked(letter.body)), HEAD_SHOWN)
    return Letter(
        id=letter.id,
        received_at=letter.received_at,
        stage=letter.stage,
        event_type=shortened(visible(masked(letter.event_type or "")), EVENT_TYPE_SHOWN),
        reason=shortened(visible(masked(letter.reason))),
        head=head,
        size=letter.body_size,
        truncated=letter.truncated,
        deliveries=letter.deliveries,
        replay=f"reclaim deadletters replay {letter.id}",
    )


def commands_for(timer: Timer) -> tuple[tuple[str, str], ...]:
    """(what it does, command) an operator runs about a failed ``timer``. Pure."""
    audit = ("Its history", f"reclaim audit {timer.resource_type} {timer.resource_id}")
    if timer.resource_type not in RECONCILED:
        return (audit,)
    project = timer.resource_id if timer.resource_type == "project" else timer.project_id
    scope = f" --project {project}" if project else ""
    return (audit, ("Try again if the rule still holds", f"reclaim reconcile{scope}"))


def failed_of(timer: Timer) -> Failed | None:
    """``timer`` as the page lists an action failed for good; None when it did not fail, or
    when its resource changed after the failure (an event closed the run later: started,
    deleted... by someone), which leaves nothing to look at. Pure."""
    if timer.state != "failed":
        return None
    entry = next((e for e in reversed(timer.history) if e.outcome == "failed"), None)
    at = entry.at if entry is not None else None
    if at is not None and timer.closed_at is not None and timer.closed_at > at:
        return None
    reason = entry.detail.get("why", "") if entry is not None else ""
    return Failed(
        timer,
        label_of(timer.resource_type),
        str(timer.detail.get("name", "")),
        shortened(visible(reason)),
        at,
        commands_for(timer),
    )


def failed_timers(store: DynamoTimerStore, budget: float | None = None) -> tuple[list[Timer], bool]:
    """The stored timers marked failed, and whether the whole table was read: a scan (they
    are in no index) whose filter sends back only the resource items holding one, a page of
    :data:`SCAN_PAGE` items at a time, stopped after the page that used up ``budget``
    seconds (default :data:`SCAN_BUDGET`). Items that do not decode are left out
    (``reclaim store quarantine`` lists them). Raises :class:`StoreError`."""
    deadline = time.monotonic() + (SCAN_BUDGET if budget is None else budget)
    kwargs: dict[str, Any] = {
        "TableName": store.table,
        "Limit": SCAN_PAGE,
        "FilterExpression": "#sk = :sk AND contains(#doc, :failed)",
        "ExpressionAttributeNames": {"#sk": "sk", "#doc": "doc"},
        "ExpressionAttributeValues": {":sk": {"S": TIMERS_SK}, ":failed": {"S": _FAILED_IN_DOC}},
    }
    found: list[Timer] = []
    while True:
        try:
            out = store.client.scan(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"scan for failed timers on {store.table}: {exc}") from exc
        for item in out.get("Items", []):
            try:
                stored = decode_item(item)
            except Exception:
                continue
            found.extend(t for t in stored.timers.values() if t.state == "failed")
        if "LastEvaluatedKey" not in out:
            return found, True
        if time.monotonic() >= deadline:
            return found, False
        kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]


def failed_section(web: Web) -> dict[str, Any]:
    """The page's "failed for good" section: the latest :data:`FAILED_SHOWN`, how many
    there are, whether the store could be read and whether all of it was."""
    try:
        timers, whole = failed_timers(web.store)
    except StoreError as exc:
        log.warning("operators' page: failed actions not listed: %s", exc)
        return {"failed": [], "failed_total": 0, "failed_unread": True, "failed_whole": False}
    if not whole:
        log.warning("operators' page: the scan for failed actions stopped after %s s", SCAN_BUDGET)
    listed = [f for t in timers if (f := failed_of(t)) is not None]
    listed.sort(key=lambda f: f.at or _EPOCH, reverse=True)
    return {
        "failed": listed[:FAILED_SHOWN],
        "failed_total": len(listed),
        "failed_unread": False,
        "failed_whole": whole,
        "scan_budget": int(SCAN_BUDGET),
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
            "letters": [letter_of(d) for d in reversed(letters[-LETTERS_SHOWN:])],
            "letters_total": len(letters),
            "can_approve": web.cloud is not None,
            "soon_days": SOON.days,
            **sections(rows_of(_pending(web), web), now),
            **failed_section(web),
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
