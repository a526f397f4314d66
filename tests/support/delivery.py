"""A notice port whose notices reach their people at once, as a mailer would record it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from reclaim.mailer.ledger import MailLedger
from reclaim.notices import NoticeMessage
from reclaim.store import DynamoTimerStore
from reclaim.sweeper import RecordingNotices
from reclaim.sweeper.notices import owner_notice
from reclaim.timers import Notice, Timer

#: The address the test and benchmark owners' mails go to.
ADDRESS = "u@example.org"


def record_delivered(
    store: DynamoTimerStore,
    timer: Timer,
    notices: Iterable[Notice] | None = None,
    address: str = ADDRESS,
) -> None:
    """Record ``notices`` of ``timer`` (default: all it marks sent) in the mail ledger as
    accepted by the SMTP server when they were sent (the records the mailer writes)."""
    ledger = MailLedger(store)
    sent = [n for n in timer.notices if n.sent_at is not None]
    for n in sent if notices is None else notices:
        assert n.sent_at is not None, f"notice {n.kind} of {timer.key} was never sent"
        nid = owner_notice(timer, n).notice_id
        ledger.record(nid, address, n.sent_at, kind=n.kind, outcome="sent")


class DeliveredNotices(RecordingNotices):
    """Keeps each notice, and records every owner notice in the mail ledger as accepted by
    the SMTP server at ``clock()`` (the record the mailer writes once a mail went out)."""

    def __init__(
        self, store: DynamoTimerStore, clock: Callable[[], datetime], address: str = ADDRESS
    ) -> None:
        super().__init__()
        self.ledger = MailLedger(store)
        self.clock = clock
        self.address = address

    def publish(self, message: NoticeMessage) -> None:
        super().publish(message)
        if not message.operator:
            self.ledger.record(
                message.notice_id, self.address, self.clock(), kind=message.kind, outcome="sent"
            )
