"""Fault injection per endpoint and the log of requests the simulated cloud served."""

from __future__ import annotations

import collections
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class FaultRule:
    """Make matching requests fail: an HTTP ``status``, a ``delay`` first, or a dropped
    connection. ``count`` is how many requests it hits (``None``: until removed)."""

    service: str | None = None
    method: str | None = None
    path_regex: str | None = None
    status: int | None = 503
    count: int | None = None
    delay: float = 0.0
    drop: bool = False
    body: str | None = None
    hits: int = 0
    id: int = 0
    _pattern: re.Pattern[str] | None = field(default=None, repr=False)

    def matches(self, service: str, method: str, path: str) -> bool:
        if self.service is not None and self.service != service:
            return False
        if self.method is not None and self.method.upper() != method:
            return False
        if self.path_regex is not None:
            if self._pattern is None:
                self._pattern = re.compile(self.path_regex)
            if not self._pattern.search(path):
                return False
        return True


class Faults:
    """The active fault rules; the first matching rule with hits left applies."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._next = 1

    def add(
        self,
        *,
        service: str | None = None,
        method: str | None = None,
        path_regex: str | None = None,
        status: int | None = 503,
        count: int | None = None,
        delay: float = 0.0,
        drop: bool = False,
        body: str | None = None,
    ) -> FaultRule:
        """Add a rule. ``status=None`` with a ``delay`` only slows matching requests down."""
        with self._lock:
            rule = FaultRule(
                service=service,
                method=method,
                path_regex=path_regex,
                status=status,
                count=count,
                delay=delay,
                drop=drop,
                body=body,
                id=self._next,
            )
            self._next += 1
            self._rules.append(rule)
            return rule

    def remove(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules = [r for r in self._rules if r.id != rule.id]

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def take(self, service: str, method: str, path: str) -> FaultRule | None:
        """Return the rule that applies to this request and count the hit (no rule: None)."""
        if not self._rules:
            return None
        with self._lock:
            for rule in self._rules:
                if rule.matches(service, method, path):
                    rule.hits += 1
                    if rule.count is not None and rule.hits >= rule.count:
                        self._rules.remove(rule)
                    return rule
        return None


@dataclass(frozen=True)
class RequestRecord:
    """One request the cloud answered (or failed on purpose)."""

    method: str
    path: str
    query: str
    service: str
    status: int
    project_id: str | None
    user_id: str | None
    timestamp: datetime
    fault: bool = False
    #: The caller's ``X-OpenStack-Request-ID`` (global request id), as Nova logs it.
    request_id: str | None = None

    @property
    def mutating(self) -> bool:
        """True for a request that changes state (token issue is not a change)."""
        if self.method not in MUTATING_METHODS:
            return False
        return not (self.service == "identity" and self.path.endswith("/auth/tokens"))


class RequestLog:
    """Bounded, thread-safe list of :class:`RequestRecord`, newest last."""

    def __init__(self, maxlen: int | None = 200_000) -> None:
        self._items: collections.deque[RequestRecord] = collections.deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._items.append(record)

    def __iter__(self) -> Iterator[RequestRecord]:
        return iter(self.all())

    def __len__(self) -> int:
        return len(self._items)

    def all(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def mutating_requests(self) -> list[RequestRecord]:
        """Requests that changed (or tried to change) state: POST/PUT/PATCH/DELETE except
        token issue."""
        return [r for r in self.all() if r.mutating]

    def filter(
        self,
        *,
        service: str | None = None,
        method: str | None = None,
        path_regex: str | None = None,
    ) -> list[RequestRecord]:
        pattern = re.compile(path_regex) if path_regex else None
        return [
            r
            for r in self.all()
            if (service is None or r.service == service)
            and (method is None or r.method == method.upper())
            and (pattern is None or pattern.search(r.path))
        ]
