"""reclaim's own allocation events, and NeCTAR's ``expiry.allocation.*`` audit events.

OpenStack has no notion of an allocation. reclaim defines two notifications, published
with oslo.messaging on the ``openstack`` exchange, topic ``notifications``, priority INFO:

``allocation.ended`` / ``allocation.renewed``, payload::

    {"project_id": "<keystone project id>",      # required
     "allocation_id": "<allocation system id>",  # optional
     "end_date": "2026-03-01T00:00:00Z",         # required for ended: when it ended
     "contacts": [{"email": "pi@example.edu", "name": "PI", "role": "pi"}]}
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from reclaim.wire import parse_timestamp


class Contact(BaseModel):
    """Somebody to tell about a project's allocation."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    email: str = Field(min_length=3, pattern=r"^[^@\s]+@[^@\s]+$")
    name: str | None = None
    role: str | None = None


class AllocationPayload(BaseModel):
    """An allocation's end or renewal for one project."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    project_id: str = Field(min_length=1)
    allocation_id: str | None = None
    end_date: datetime | None = None
    contacts: list[Contact] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _nectar(cls, raw: Any) -> Any:
        # NeCTAR's expiry notifications nest the allocation: {"allocation": {...}}.
        if isinstance(raw, dict) and isinstance(raw.get("allocation"), dict):
            alloc = raw["allocation"]
            contacts = [
                {"email": alloc[k], "role": k}
                for k in ("contact_email", "approver_email")
                if isinstance(alloc.get(k), str) and "@" in alloc[k]
            ]
            return {
                "project_id": alloc.get("project_id"),
                "allocation_id": str(alloc["id"]) if alloc.get("id") is not None else None,
                "end_date": alloc.get("end_date"),
                "contacts": contacts,
            }
        return raw

    @field_validator("end_date", mode="before")
    @classmethod
    def _date(cls, value: Any) -> Any:
        if isinstance(value, str) and len(value) == 10:  # a bare date: the end of that day
            value = value + "T00:00:00Z"
        return None if value is None else parse_timestamp(value)
