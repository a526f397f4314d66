"""The bus guard refuses a body nested too deeply before any recursive decoder sees it."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from reclaim.bus import guard
from reclaim.wire import MAX_BODY

DEEP = "[" * 50_000 + "]" * 50_000
REFUSED = "undecodable body: nested too deeply (over 100 levels of arrays and objects)"


class Sink:
    """Keeps the reasons the guard dead-letters with."""

    max_body = MAX_BODY

    def __init__(self) -> None:
        self.reasons: list[str] = []
        self.metrics = SimpleNamespace(received=SimpleNamespace(inc=lambda: None))

    def submit(self, callback: Any, message: Any, problem: str) -> None:
        self.reasons.append(problem)


def _deliver(monkeypatch: pytest.MonkeyPatch, message: Any) -> list[str]:
    """Hand ``message`` to the guard as oslo's consumer would; the reasons it gave."""
    sink = Sink()
    monkeypatch.setitem(guard._sinks, "q", sink)  # type: ignore[arg-type]
    consumer = SimpleNamespace(queue_name="q", queue=SimpleNamespace(channel=None), callback=None)
    guard._guarded_callback(consumer, message)
    return sink.reasons


def test_a_deep_body_is_refused_before_kombu_decodes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    class Message:
        body = DEEP.encode()

        @property
        def payload(self) -> Any:
            raise AssertionError("kombu decoded a body nested too deeply")

    assert _deliver(monkeypatch, Message()) == [REFUSED]


def test_a_deep_v2_message_is_refused_before_oslo_decodes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    envelope = {"oslo.version": "2.0", "oslo.message": DEEP}

    def deserialize_msg(body: Any) -> Any:
        raise AssertionError("oslo decoded a message nested too deeply")

    rabbit = SimpleNamespace(rpc_common=SimpleNamespace(deserialize_msg=deserialize_msg))
    monkeypatch.setattr(guard, "_impl_rabbit", lambda: rabbit)
    message = SimpleNamespace(body=json.dumps(envelope).encode(), payload=envelope)
    assert _deliver(monkeypatch, message) == [REFUSED]
