"""What the listener subscribes to, derived from the route table. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from reclaim.routes import ROUTES, Route


@dataclass(frozen=True)
class Subscription:
    """The (exchange, topic) pairs, priorities and event types a listener consumes."""

    targets: tuple[tuple[str, str], ...]
    priorities: tuple[str, ...]
    event_types: tuple[str, ...]

    @property
    def event_type_pattern(self) -> str:
        """An anchored regular expression matching exactly the routed event types."""
        return event_type_pattern(self.event_types)


def event_type_pattern(event_types: Iterable[str]) -> str:
    """``^(?:a|b|...)$`` over the literal event types (dots escaped)."""
    alternatives = "|".join(re.escape(e) for e in sorted(set(event_types)))
    return f"^(?:{alternatives})$"


def subscription(routes: Sequence[Route] = ROUTES, exchanges: Sequence[str] = ()) -> Subscription:
    """The listener's subscription for ``routes``.

    Targets are each route's (exchange, topic); when ``exchanges`` is given it replaces the
    routes' exchanges (a cloud with a renamed ``control_exchange``), keeping their topics.
    """
    if exchanges:
        topics = sorted({r.topic for r in routes})
        targets = [(e, t) for e in dict.fromkeys(exchanges) for t in topics]
    else:
        targets = sorted({(r.exchange, r.topic) for r in routes})
    priorities = sorted({p.lower() for r in routes for p in r.priorities})
    event_types = sorted({e for r in routes for e in r.event_types})
    return Subscription(tuple(targets), tuple(priorities), tuple(event_types))
