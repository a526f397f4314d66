"""A notice port whose notices reach their people at once, as a mailer would record it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from reclaim.mailer.ledger import MailLedger
from reclaim.notices import NoticeMessage
from reclaim.store import DynamoTimerStore
from reclaim.sweeper import RecordingNotices


class DeliveredNotices(RecordingNotices):
    """Keeps each notice, and records every owner notice in the mail ledger as accepted by
    the SMTP server at ``clock()`` (the record the mailer writes once a mail went out)."""

    def __init__(
        self, store: DynamoTimerStore, clock: Callable[[], datetime], address: str = "u@example.org"
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
