"""The kinds of notice reclaim sends, who each is for, and what each means. Pure data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Audience = Literal["owner", "project", "dependents", "operators"]


@dataclass(frozen=True)
class Kind:
    """One kind of notice: its name on the bus, its audience, and a line on what it means."""

    name: str
    audience: Audience
    summary: str
    upcoming: bool = False


#: Every kind this schema version defines. Consumers must accept kinds not listed here.
KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("shelve_upcoming", "owner", "a stopped or suspended server will be shelved", True),
        Kind("shelved", "owner", "a server was shelved"),
        Kind("delete_upcoming", "owner", "a shelved server will be deleted", True),
        Kind("deleted", "owner", "a shelved server was deleted"),
        Kind(
            "date_changed",
            "owner",
            "the date of an announced action changed (earlier or later)",
            True,
        ),
        Kind("allocation_ended", "project", "a project's allocation ended; cleanup is scheduled"),
        Kind("cleanup_upcoming", "project", "a project's resources will be deleted", True),
        Kind("project_cleaned", "project", "a project's resources were deleted"),
        Kind(
            "images_deletion_upcoming",
            "project",
            "a departed owner's shared images will be deleted",
            True,
        ),
        Kind("images_deleted", "project", "a departed owner's shared images were deleted"),
        Kind("image_going_away", "dependents", "an image your servers use will go away"),
        Kind("eol_image", "dependents", "an image your servers use reached end of life"),
        Kind("exposed_service", "project", "a security group rule exposes a service"),
        Kind("rule_removal_upcoming", "project", "an exposing security group rule will go", True),
        Kind("rule_removed", "project", "an exposing security group rule was removed"),
        Kind("action_failed", "operators", "an action failed after its retries"),
        Kind("action_skipped", "operators", "an action was skipped on re-check"),
        Kind("sweep_cap_reached", "operators", "a sweep hit its cap; the breaker is open"),
        Kind("cleanup_leftovers", "operators", "a project cleanup left resources behind"),
        Kind("mail_undeliverable", "operators", "some addresses of a notice got no mail"),
        Kind("store_item_unreadable", "operators", "a stored item does not decode; it is skipped"),
    )
}

#: The notice that replaces the dates people were given (a corrected or restated date).
DATE_CHANGED = "date_changed"
#: The alert naming the addresses of a notice that got no mail.
MAIL_UNDELIVERABLE = "mail_undeliverable"

#: Kinds that go to operators, never to users.
OPERATOR_KINDS = frozenset(k.name for k in KINDS.values() if k.audience == "operators")


def kind_of(name: str) -> Kind:
    """The kind called ``name``; an unknown name is a project-wide kind (forward compatible)."""
    return KINDS.get(name) or Kind(name, "project", name.replace("_", " "))
