"""Glance image and image-member notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Visibility = Literal["private", "shared", "community", "public"]

#: Glance v2 image fields that are not image properties (every other key is one).
GLANCE_CORE_FIELDS = frozenset(
    {
        "id",
        "name",
        "status",
        "visibility",
        "protected",
        "os_hidden",
        "owner",
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "min_disk",
        "min_ram",
        "size",
        "virtual_size",
        "container_format",
        "disk_format",
        "created_at",
        "updated_at",
        "tags",
        "self",
        "file",
        "schema",
        "locations",
        "direct_url",
        "stores",
    }
)


class ImagePayload(BaseModel):
    """``image.create/update/delete``: the image after the change."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str = Field(min_length=1)
    name: str | None = None
    owner: str | None = None
    visibility: Visibility = "shared"
    status: str | None = None
    protected: bool = False
    os_hidden: bool = False
    properties: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    updated_at: datetime | None = None
    deleted: bool = False
    deleted_at: datetime | None = None


class ImageMemberPayload(BaseModel):
    """``image.member.create/update/delete``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    image_id: str = Field(min_length=1)
    member_id: str = Field(min_length=1)
    status: str | None = None
    deleted: bool = False
