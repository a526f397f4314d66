"""Timer commands: what a policy handler decides, as data (pure, no I/O)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import PlainSerializer

from reclaim.durations import human_duration

ResourceType = Literal["server", "project", "user", "image", "security_group_rule"]
Op = Literal["schedule", "cancel"]
#: A cancel naming this rule stops every timer of the resource.
ALL_RULES = "*"


def iso_z(value: datetime) -> str:
    """ISO-8601 in UTC with a ``Z`` suffix, the one way reclaim writes instants."""
    text = value.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


Instant = Annotated[datetime, PlainSerializer(iso_z, return_type=str, when_used="json")]


@dataclass(slots=True)
class TimerCommand:
    """Schedule or cancel one timer of a rule on a resource.

    ``event_time`` is the timestamp of the event that decided it: the store orders
    deliveries by it, so redelivered or late events change nothing. ``since`` is when the
    rule's condition began (the event time for server states, the end date for
    allocations). A ``cancel`` stops the rule's action and all of its notices.
    A plain dataclass (not pydantic, not frozen: both cost several times more to build, and
    handlers build several per event from typed data). Treat it as immutable: derive changed
    copies with ``dataclasses.replace``.
    """

    op: Op
    resource_type: ResourceType
    resource_id: str
    rule: str
    action: str
    event_time: datetime
    notice: str | None = None
    due_at: datetime | None = None
    since: datetime | None = None
    project_id: str | None = None
    user_id: str | None = None
    clause: str = ""
    detail: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The command as printed by ``reclaim invoke``: JSON types, instants in ISO ``Z``."""
        out: dict[str, Any] = {
            "op": self.op,
            "resource_type": self.resource_type,
            "resource_id": self.resource_id,
            "rule": self.rule,
            "action": self.action,
        }
        if self.notice is not None:
            out["notice"] = self.notice
        for name in ("due_at", "since", "event_time"):
            value = getattr(self, name)
            if value is not None:
                out[name] = iso_z(value)
        for name in ("project_id", "user_id"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        out["clause"] = self.clause
        out["detail"] = dict(self.detail)
        return out


@dataclass(frozen=True)
class Rule:
    """A policy rule: which resource it concerns, what it does when due, and why.

    ``notice`` is the kind of the advance notices sent before the action; ``clause`` is
    the sentence of the policy it enforces, quoted in notices and the audit trail. Where
    the sentence names the rule's period it says ``{period}``, which each schedule fills
    with its delay as people write it (``2 weeks``, ``180 days``): the quote then states the
    configured period, not the default one.
    """

    id: str
    resource_type: ResourceType
    action: str
    notice: str | None
    clause: str

    def clause_for(self, delay: timedelta) -> str:
        """The clause with its ``{period}`` stated as ``delay``."""
        return _clause(self.clause, delay)

    def schedule(
        self,
        resource_id: str,
        *,
        since: datetime,
        delay: timedelta,
        event_time: datetime,
        notices: tuple[tuple[str, timedelta], ...] = (),
        project_id: str | None = None,
        user_id: str | None = None,
        detail: dict[str, str] | None = None,
    ) -> list[TimerCommand]:
        """Commands that schedule the action at ``since + delay`` and its notices before it."""
        due = since + delay
        detail = detail or {}
        clause = _clause(self.clause, delay)

        def command(action: str, notice: str | None, due_at: datetime) -> TimerCommand:
            # Positional: this runs for every command of every event.
            return TimerCommand(
                "schedule", self.resource_type, resource_id, self.id, action, event_time,
                notice, due_at, since, project_id, user_id, clause, detail,
            )  # fmt: skip

        out = [command(self.action, None, due)]
        out.extend(command("notify", kind, due - before) for kind, before in notices)
        return out

    def notices_before(self, offsets: tuple[timedelta, ...]) -> tuple[tuple[str, timedelta], ...]:
        """This rule's advance-notice kind at each offset before the action."""
        return tuple((self.notice or "notice", d) for d in offsets)

    def cancel(self, resource_id: str, *, event_time: datetime) -> TimerCommand:
        """The command that cancels this rule's action and notices on ``resource_id`` (it
        enforces nothing, so it quotes no clause)."""
        return TimerCommand(
            op="cancel",
            resource_type=self.resource_type,
            resource_id=resource_id,
            rule=self.id,
            action=self.action,
            event_time=event_time,
        )


@functools.lru_cache(maxsize=256)
def _clause(template: str, delay: timedelta) -> str:
    # Cached: this runs for every schedule of every event, with few distinct rules and delays.
    return template.replace("{period}", human_duration(delay))
