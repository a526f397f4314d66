"""The notice schema: what reclaim publishes as ``reclaim.notice.<kind>`` payloads. Pure.

Versioned: ``version`` is this module's :data:`SCHEMA_VERSION`. Within a version fields are
only ever added (with defaults), so a consumer reads any payload of its version or later
and ignores fields it does not know; a new kind is not a new version.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from reclaim.durations import Duration
from reclaim.notices.kinds import OPERATOR_KINDS, kind_of

SCHEMA_VERSION = 1
EVENT_PREFIX = "reclaim.notice."
NOTICE_TOPIC = "reclaim_notices"
NOTICE_EXCHANGE = "openstack"

#: uuid5 namespace of notice ids (fixed forever: ids must not change between releases).
_NAMESPACE = uuid.UUID("6f1c1d52-5b0e-5a8e-9a43-7b2f0f3c9e11")


class Recipients(BaseModel):
    """Who a notice is for. A consumer resolves user and project ids to people."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    user_ids: tuple[str, ...] = ()
    project_id: str | None = None
    addresses: tuple[str, ...] = Field(
        (), description="e-mail addresses already known (allocation contacts)"
    )
    operators: bool = Field(False, description="for the cloud's operators, not its users")


class NoticeMessage(BaseModel):
    """One notice on the bus: the payload of ``reclaim.notice.<kind>``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    version: int = SCHEMA_VERSION
    notice_id: str = Field("", description="stable id: the same for every publication")
    kind: str
    resource_type: str
    resource_id: str
    resource_name: str = ""
    project_id: str | None = None
    user_id: str | None = None
    action: str = Field("", description="what will be (or was) done: shelve, delete, cleanup...")
    due_at: datetime | None = Field(None, description="when the action is due (UTC)")
    notice_at: datetime | None = Field(None, description="when this notice was due to go out")
    published_at: datetime | None = Field(
        None,
        description="when the sweeper published it (its clock): mails count the days left "
        "from here, so a late notice states the right count",
    )
    delay: Duration | None = Field(
        None,
        description="the rule's period: how long its condition lasts before the action is due "
        "(e.g. 14d stopped before a shelve; JSON: 14d, 1d12h); None when not given",
    )
    clause: str = Field("", description="the policy sentence the action enforces")
    detail: dict[str, str] = Field(default_factory=dict)
    dedupe_key: str = ""
    operator: bool = False
    recipients: Recipients = Field(default_factory=Recipients)

    @model_validator(mode="before")
    @classmethod
    def _derive(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        d = dict(data)
        detail = d.get("detail") or {}
        operator = bool(d.get("operator")) or d.get("kind") in OPERATOR_KINDS
        d["operator"] = operator
        if not d.get("resource_name") and isinstance(detail, Mapping):
            # the resource's name: ``name``, else ``<type>_name`` (an image's image_name)
            named = detail.get("name") or detail.get(f"{d.get('resource_type')}_name")
            if named:
                d["resource_name"] = str(named)
        if not d.get("recipients"):
            contacts = str(detail.get("contacts", "")) if isinstance(detail, Mapping) else ""
            d["recipients"] = Recipients(
                user_ids=(d["user_id"],) if d.get("user_id") and not operator else (),
                project_id=None if operator else d.get("project_id"),
                addresses=tuple(a.strip() for a in contacts.split(",") if a.strip()),
                operators=operator,
            )
        if not d.get("notice_id"):
            d["notice_id"] = notice_id(d)
        return d

    @property
    def event_type(self) -> str:
        return EVENT_PREFIX + self.kind

    @property
    def priority(self) -> str:
        """oslo priority: ``WARN`` for operator alerts, ``INFO`` for everything else."""
        return "WARN" if self.operator else "INFO"

    @property
    def audience(self) -> str:
        return "operators" if self.operator else kind_of(self.kind).audience

    def payload(self) -> dict[str, Any]:
        """The JSON payload as published."""
        return self.model_dump(mode="json")


def notice_id(fields: Mapping[str, Any]) -> str:
    """A notice's id: uuid5 of its dedupe key, or of its content when it has none. Pure."""
    key = fields.get("dedupe_key") or json.dumps(
        {
            k: _plain(fields.get(k))
            for k in ("kind", "resource_type", "resource_id", "action", "due_at", "detail")
        },
        sort_keys=True,
    )
    return str(uuid.uuid5(_NAMESPACE, str(key)))


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def parse_notice(payload: Mapping[str, Any]) -> NoticeMessage:
    """A notice from a published payload (unknown fields ignored). Raises ``ValueError``."""
    return NoticeMessage.model_validate(payload)
