"""Notices the sweeper publishes: warnings to owners and alerts to operators.

The payload is :class:`reclaim.notices.NoticeMessage` (versioned schema). Publication is
at-least-once: a notice is published, then recorded on its timer; a crash in between
publishes it again on the next sweep. Its ``dedupe_key`` (timer key, kind, due time) and the
``notice_id`` and oslo ``message_id`` derived from it are the same both times, so a consumer
drops the repeat (the mailer does, durably). A timer moved to a new date has new due times,
hence new keys: its notices go out again for the new date only.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypedDict

from reclaim.notices.schema import (
    EVENT_PREFIX,
    NOTICE_EXCHANGE,
    NOTICE_TOPIC,
    NoticeMessage,
    Recipients,
)
from reclaim.timers import Notice, Timer

if TYPE_CHECKING:
    from reclaim.bus.settings import BusSettings

__all__ = [
    "ACTION_FAILED",
    "ACTION_HELD",
    "ACTION_SKIPPED",
    "CAP_REACHED",
    "CLEANUP_UNCONFIRMED",
    "EVENT_PREFIX",
    "NOTICES_UNDELIVERED",
    "NOTICE_EXCHANGE",
    "NOTICE_TOPIC",
    "STORE_ITEM_UNREADABLE",
    "NoticeMessage",
    "NoticePort",
    "OsloNotices",
    "Recipients",
    "RecordingNotices",
    "dedupe_key",
    "operator_alert",
    "owner_notice",
    "unreadable_alert",
]

#: Operator alert kinds.
CAP_REACHED = "sweep_cap_reached"
ACTION_FAILED = "action_failed"
ACTION_SKIPPED = "action_skipped"
STORE_ITEM_UNREADABLE = "store_item_unreadable"
#: A due action held for a reason that persists (server locked, owner still in Keystone).
ACTION_HELD = "action_held"
#: A project cleanup held: Keystone does not confirm that the allocation ended.
CLEANUP_UNCONFIRMED = "cleanup_unconfirmed"
#: A due action held: none of its notices reached anyone.
NOTICES_UNDELIVERED = "notices_undelivered"


class About(TypedDict):
    """What a notice about a timer is about: the resource, its owner, the rule's action, its
    date and the policy clause (the fields of :class:`NoticeMessage` that say so)."""

    resource_type: str
    resource_id: str
    project_id: str | None
    user_id: str | None
    action: str
    due_at: datetime | None
    clause: str


def about(timer: Timer, due_at: datetime | None = None) -> About:
    """The fields of a notice about ``timer``, stating ``due_at`` (default: the timer's due
    date) as the action's date. Pure."""
    return About(
        resource_type=timer.resource_type,
        resource_id=timer.resource_id,
        project_id=timer.project_id,
        user_id=timer.user_id,
        action=timer.action,
        due_at=due_at or timer.due_at,
        clause=timer.clause,
    )


def dedupe_key(timer: Timer, kind: str, due_at: datetime | None) -> str:
    """The same for every publication of one notice of one run of one timer."""
    when = due_at.isoformat() if due_at else "-"
    return "|".join((*timer.key, kind, when))


def owner_notice(
    timer: Timer,
    notice: Notice,
    due_at: datetime | None = None,
    published_at: datetime | None = None,
) -> NoticeMessage:
    """The owner's warning for a timer's notice, stating ``due_at`` (default: the timer's
    due date) as the action's date, published at ``published_at`` (the sweep's clock; the
    mail counts its days left from there). Its ``notice_id`` depends on the timer and the
    notice only, so the sweeper finds the mailer's ledger records of it by that id."""
    return NoticeMessage(
        kind=notice.kind,
        **about(timer, due_at),
        notice_at=notice.due_at,
        published_at=published_at,
        delay=timer.delay,
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
        **about(timer),
        detail={"reason": reason, "rule": timer.rule, **dict(timer.detail), **detail},
        dedupe_key=dedupe_key(timer, kind, timer.due_at),
        operator=True,
    )


def unreadable_alert(key: str, reason: str) -> NoticeMessage:
    """The alert that the stored item ``key`` does not decode and is skipped by every read."""
    resource_type, _, resource_id = key.partition("#")
    return NoticeMessage(
        kind=STORE_ITEM_UNREADABLE,
        resource_type=resource_type or "store",
        resource_id=resource_id or key,
        detail={
            "reason": reason,
            "key": key,
            "fix": f"reclaim store quarantine show {key}; then drop it and run reclaim reconcile",
        },
        dedupe_key=f"{key}|{STORE_ITEM_UNREADABLE}",
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


def oslo_message(message: NoticeMessage, publisher_id: str, now: datetime) -> dict[str, Any]:
    """The notification a ``messagingv2`` notifier would build, with ``message_id`` set to
    the notice's id so a repeat is recognisable on the bus too. Pure."""
    return {
        "message_id": message.notice_id,
        "publisher_id": publisher_id,
        "event_type": message.event_type,
        "priority": message.priority,
        "payload": message.payload(),
        "timestamp": now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
    }


#: Connection retries of one notice (``_send_notification``'s ``retry``; oslo's default,
#: None, retries for ever). One retry, a second later, rides out a dropped connection or a
#: broker fail-over; longer is pointless, since a notice that fails keeps its timer due and
#: the next sweep (``run.sweep_every``) sends it. So a notice fails within about a second
#: plus two connect timeouts, and a sweep with a dead bus ends instead of hanging.
NOTICE_RETRY = 1


class OsloNotices:
    """Publishes notices on the bus as a ``messagingv2`` oslo notifier would: exchange
    ``openstack``, topic ``reclaim_notices``, routing key ``reclaim_notices.info`` (alerts:
    ``.warn``), event type ``reclaim.notice.<kind>``.

    It makes the same transport call as oslo's notifier driver, but raises
    :class:`~reclaim.bus.transport.BusError` when the broker does not take the message within
    ``retry`` reconnects (``Notifier`` logs and drops it) and keeps the notice's id as
    ``message_id``. ``settings`` give the broker and the durability of the exchange, as for
    every reclaim publisher and consumer (``bus.durable_queues``).
    """

    def __init__(
        self,
        settings: BusSettings,
        *,
        publisher_id: str = "reclaim.sweeper",
        retry: int = NOTICE_RETRY,
    ) -> None:
        from reclaim.bus.transport import notification_transport

        self.settings = settings
        self.publisher_id = publisher_id
        self.retry = retry
        self._transport = notification_transport(settings, control_exchange=NOTICE_EXCHANGE)

    def publish(self, message: NoticeMessage) -> None:
        from reclaim.bus.transport import BusError, explain
        from reclaim.oslo import messaging

        om = messaging()
        body = oslo_message(message, self.publisher_id, datetime.now(UTC))
        target = om.Target(topic=f"{NOTICE_TOPIC}.{message.priority.lower()}")
        try:
            self._transport._send_notification(target, {}, body, version=2.0, retry=self.retry)
        except Exception as exc:
            raise BusError(explain(self.settings.transport_url, exc)) from exc

    def close(self) -> None:
        self._transport.cleanup()
