"""Nova instance notifications: versioned ``instance.*`` and legacy ``compute.instance.*``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: vm_states in which a server still exists (``deleted`` and ``soft-delete`` do not).
GONE_STATES = frozenset({"deleted", "soft-delete"})


def unwrap_nova_object(value: Any) -> Any:
    """Return the ``nova_object.data`` of a versioned object, or ``value`` unchanged."""
    if isinstance(value, dict) and "nova_object.data" in value:
        return value["nova_object.data"]
    return value


class InstancePayload(BaseModel):
    """One server as a notification describes it, normalised across both Nova formats.

    Versioned payloads (``InstanceActionPayload``, ``InstanceUpdatePayload``...) name the
    server ``uuid`` and the image ``image_uuid``; legacy ones name them ``instance_id`` and
    ``image_ref_url`` and put ``old_state`` at the top level instead of in ``state_update``.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    server_id: str = Field(min_length=1)
    project_id: str = Field(min_length=1)
    user_id: str | None = None
    state: str = Field(min_length=1)
    old_state: str | None = None
    task_state: str | None = None
    image_id: str | None = None
    display_name: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    locked: bool | None = None
    updated_at: datetime | None = None
    versioned: bool

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        if "nova_object.data" in raw:
            data = unwrap_nova_object(raw)
            if not isinstance(data, dict):
                raise ValueError("nova_object.data must be an object")
            update = unwrap_nova_object(data.get("state_update")) or {}
            return {
                "server_id": data.get("uuid"),
                "project_id": data.get("tenant_id"),
                "user_id": data.get("user_id"),
                "state": data.get("state"),
                "old_state": update.get("old_state") if isinstance(update, dict) else None,
                "task_state": data.get("task_state"),
                "image_id": data.get("image_uuid") or None,
                "display_name": data.get("display_name"),
                "metadata": data.get("metadata") or {},
                "locked": data.get("locked"),
                "updated_at": data.get("updated_at"),
                "versioned": True,
            }
        image_ref = raw.get("image_ref_url") or ""
        return {
            "server_id": raw.get("instance_id"),
            "project_id": raw.get("tenant_id"),
            "user_id": raw.get("user_id"),
            "state": raw.get("state"),
            "old_state": raw.get("old_state"),
            "task_state": raw.get("new_task_state", raw.get("state_description")),
            "image_id": image_ref.rstrip("/").rsplit("/", 1)[-1]
            if isinstance(image_ref, str) and image_ref
            else None,
            "display_name": raw.get("display_name"),
            "metadata": raw.get("metadata") or {},
            "versioned": False,
        }

    @field_validator("metadata", mode="before")
    @classmethod
    def _metadata_as_dict(cls, value: Any) -> Any:
        # Very old legacy payloads send metadata as a list of {"key", "value"} pairs.
        if isinstance(value, list):
            return {
                str(i["key"]): str(i["value"]) for i in value if isinstance(i, dict) and "key" in i
            }
        return value
