"""Notices: the versioned schema reclaim publishes on the bus, its kinds, and mail context."""

from reclaim.notices.kinds import (
    DATE_CHANGED,
    KINDS,
    MAIL_UNDELIVERABLE,
    OPERATOR_KINDS,
    Kind,
    kind_of,
)
from reclaim.notices.schema import (
    EVENT_PREFIX,
    NOTICE_EXCHANGE,
    NOTICE_TOPIC,
    SCHEMA_VERSION,
    NoticeMessage,
    Recipients,
    notice_id,
    parse_notice,
)

__all__ = [
    "DATE_CHANGED",
    "EVENT_PREFIX",
    "KINDS",
    "MAIL_UNDELIVERABLE",
    "NOTICE_EXCHANGE",
    "NOTICE_TOPIC",
    "OPERATOR_KINDS",
    "SCHEMA_VERSION",
    "Kind",
    "NoticeMessage",
    "Recipients",
    "kind_of",
    "notice_id",
    "parse_notice",
]
