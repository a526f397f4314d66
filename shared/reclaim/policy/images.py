"""Image rules: an image that is deleted has nothing left to warn about."""

from __future__ import annotations

from reclaim.commands import ALL_RULES, TimerCommand
from reclaim.models.glance import ImagePayload
from reclaim.settings import PolicySettings
from reclaim.wire import Notification


def on_image_deleted(n: Notification[ImagePayload], policy: PolicySettings) -> list[TimerCommand]:
    """Cancel every timer of a deleted image. Pure."""
    return [
        TimerCommand(
            op="cancel",
            resource_type="image",
            resource_id=n.payload.id,
            rule=ALL_RULES,
            action="all",
            event_time=n.timestamp,
            project_id=n.payload.owner,
        )
    ]
