"""Keystone identity notifications, ``basic`` and ``cadf`` formats."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class IdentityPayload(BaseModel):
    """The resource an ``identity.<resource>.<operation>`` notification is about.

    ``basic``: ``{"resource_info": "<id>"}``. ``cadf``: a pyCADF event whose ``target.id``
    names the resource, with ``action`` (``deleted.project``), ``initiator`` and
    ``eventTime``; Keystone adds ``resource_info`` to it as well.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    resource_id: str = Field(min_length=1)
    cadf: bool = False
    action: str | None = None
    initiator_id: str | None = None
    event_time: datetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        if "typeURI" in raw or "target" in raw:
            target = raw["target"] if isinstance(raw.get("target"), dict) else {}
            initiator = raw["initiator"] if isinstance(raw.get("initiator"), dict) else {}
            return {
                "resource_id": raw.get("resource_info") or target.get("id"),
                "cadf": True,
                "action": raw.get("action"),
                "initiator_id": initiator.get("id"),
                "event_time": raw.get("eventTime"),
            }
        return {"resource_id": raw.get("resource_info")}
