"""Notices the sweeper publishes: warnings to owners and alerts to operators.

Delivery is at-least-once: a notice is published, then recorded on its timer; a crash in
between publishes it again on the next sweep. ``dedupe_key`` (timer key, kind, due time) is
the same both times, so a consumer can drop the repeat.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from reclaim.timers import Notice, Timer

EVENT_PREFIX = "reclaim.notice."
NOTICE_TOPIC = "reclaim_notices"
NOTICE_EXCHANGE = "openstack"

#: Operator alert kinds.
CAP_REACHED = "sweep_cap_reached"
ACTION_FAILED = "action_failed"
ACTION_SKIPPED = "action_skipped"


class NoticeMessage(BaseModel):
    """One notice on the bus (the payload of ``reclaim.notice.<kind>``)."""

    model_config = ConfigDict(frozen=True)

    kind: str
    resource_type: str
    resource_id: str
    project_id: str | None = None
    user_id: str | None = None
    action: str = ""
    due_at: datetime | None = None
    clause: str = ""
    detail: dict[str, str] = Field(default_factory=dict)
    dedupe_key: str = ""
    operator: bool = False

    @property
    def event_type(self) -> str:
        return EVENT_PREFIX + self.kind


def dedupe_key(timer: Timer, kind: str, due_at: datetime | None) -> str:
    """The same for every publication of one notice of one run of one timer."""
    when = due_at.isoformat() if due_at else "-"
    return "|".join((*timer.key, kind, when))


def owner_notice(timer: Timer, notice: Notice) -> NoticeMessage:
    """The owner's warning for a timer's notice."""
    return NoticeMessage(
        kind=notice.kind,
        resource_type=timer.resource_type,
        resource_id=timer.resource_id,
        project_id=timer.project_id,
        user_id=timer.user_id,
        action=timer.action,
        due_at=timer.due_at,
        clause=timer.clause,
        detail=dict(timer.detail),
        dedupe_key=dedupe_key(timer, notice.kind, notice.due_at),
    )


def operator_alert(kind: str, timer: Timer | None, reason: str, **detail: str) -> NoticeMessage:
    """An alert for operators, about a timer or (``timer=None``) about the sweep itself."""
    if timer is None:
        return NoticeMessage(
            kind=kind,
            resource_type="sweep",
            resource_id="global",
            detail={"reason": reason, **detail},
            operator=True,
        )
    return NoticeMessage(
        kind=kind,
        resource_type=timer.resource_type,
        resource_id=timer.resource_id,
        project_id=timer.project_id,
        user_id=timer.user_id,
        action=timer.action,
        due_at=timer.due_at,
        clause=timer.clause,
        detail={"reason": reason, "rule": timer.rule, **dict(timer.detail), **detail},
        dedupe_key=dedupe_key(timer, kind, timer.due_at),
        operator=True,
    )


class NoticePort(Protocol):
    """Where notices go. ``publish`` raises if the notice could not be handed over."""

    def publish(self, message: NoticeMessage) -> None: ...


class RecordingNotices:
    """Keeps published notices in memory (tests, dry runs)."""

    def __init__(self) -> None:
        self.messages: list[NoticeMessage] = []
        self._lock = threading.Lock()

    def publish(self, message: NoticeMessage) -> None:
        with self._lock:
            self.messages.append(message)

    def kinds(self) -> list[str]:
        with self._lock:
            return [m.kind for m in self.messages]


class OsloNotices:
    """Publishes notices through an oslo.messaging notifier (``messagingv2``, topic
    ``reclaim_notices``, exchange ``openstack``); event type ``reclaim.notice.<kind>``."""

    def __init__(self, url: str, *, publisher_id: str = "reclaim.sweeper") -> None:
        from reclaim.oslo import messaging, transport

        om = messaging()
        self._transport = transport(url)
        self._notifier = om.Notifier(
            self._transport,
            publisher_id=publisher_id,
            driver="messagingv2",
            topics=[NOTICE_TOPIC],
        )

    def publish(self, message: NoticeMessage) -> None:
        payload: dict[str, Any] = message.model_dump(mode="json")
        if message.operator:
            self._notifier.warn({}, message.event_type, payload)
        else:
            self._notifier.info({}, message.event_type, payload)

    def close(self) -> None:
        self._transport.cleanup()
