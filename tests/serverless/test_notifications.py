"""Notification batches from Amazon MQ and SQS: timers stored, poison kept, failures reported."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from reclaim import routes
from reclaim.commands import TimerCommand
from reclaim.deadletters import DeadLetterStore
from reclaim.serverless import notifications
from reclaim.serverless.events import mq_event, mq_records
from reclaim.settings import PolicySettings
from reclaim.store import DynamoTimerStore, StoreError, open_store
from reclaim.store.port import ApplyResult
from reclaim.timers import Timer
from tests.serverless.conftest import fresh_table, lambda_event

POLICY = PolicySettings()
NOW = datetime(2026, 3, 2, tzinfo=UTC)


def clock() -> datetime:
    return NOW


def pending(store: DynamoTimerStore) -> list[tuple[Any, ...]]:
    return [(t.key, t.next_due()) for t in store.pending()]


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "PutItem")


class BrokenStore:
    """A store whose writes fail from the ``after``-th apply on, with ``code``."""

    def __init__(self, inner: DynamoTimerStore, code: str, after: int = 0) -> None:
        self.inner, self.code, self.after, self.calls = inner, code, after, 0

    def apply(self, commands: Sequence[TimerCommand]) -> ApplyResult:
        self.calls += 1
        if self.calls > self.after:
            try:
                raise client_error(self.code)
            except ClientError as exc:
                raise StoreError(f"put_item: {exc}") from exc
        return self.inner.apply(commands)

    def timers_for(self, resource_type: str, resource_id: str) -> list[Timer]:
        return self.inner.timers_for(resource_type, resource_id)

    def pending(self, due_before: datetime | None = None) -> Iterator[Timer]:
        return self.inner.pending(due_before)

    def replace(self, old: Timer, new: Timer) -> Timer | None:
        return self.inner.replace(old, new)


# -- Amazon MQ ---------------------------------------------------------------------------


def test_mq_batch_stores_what_the_pure_pipeline_decides(
    table_store: DynamoTimerStore, deadletters: DeadLetterStore
) -> None:
    event = lambda_event("mq-notifications")
    result = notifications.handle_mq(event, POLICY, table_store, deadletters, clock)

    reference = open_store(f"memory://{fresh_table()}")
    for record in mq_records(event):
        assert record.body is not None
        reference.apply(routes.commands_for(record.body, POLICY))
    assert pending(table_store) == pending(reference)
    assert pending(table_store), "the sample batch starts timers"
    assert (result.received, result.applied, result.ignored) == (4, 3, 1)
    assert result.dead_lettered == []
    assert list(deadletters.list()) == []


def test_mq_poison_records_are_dead_lettered_and_the_good_ones_still_stored(
    table_store: DynamoTimerStore, deadletters: DeadLetterStore
) -> None:
    event = lambda_event("mq-poison")
    result = notifications.handle_mq(event, POLICY, table_store, deadletters, clock)

    queue = "reclaim.notifications::/"
    assert result.dead_lettered == [f"{queue}#1", f"{queue}#2", f"{queue}#3"]
    assert result.applied == 2
    servers = {t.resource_id for t in table_store.pending()}
    assert servers == {
        "178b0921-8f85-4257-88b6-2e743b5a975c",
        "0c1d7a51-5a2e-4c1f-9a3b-7a1f00000002",
    }

    letters = {d.ref: d for d in deadletters.list()}
    assert set(letters) == set(result.dead_lettered)
    assert "not base64" in letters[f"{queue}#1"].reason
    assert letters[f"{queue}#1"].body == "%%% not base64 %%%"  # what arrived is kept
    assert "not JSON" in letters[f"{queue}#2"].reason
    assert letters[f"{queue}#2"].body == "not json at all"
    assert "payload.server_id" in letters[f"{queue}#3"].reason
    assert all(d.deliveries == 1 and d.source == queue for d in letters.values())
    assert [letters[f"{queue}#{i}"].stage for i in (1, 2, 3)] == ["decode", "parse", "parse"]


def test_redelivered_batch_changes_no_timer_and_counts_poison_deliveries(
    table_store: DynamoTimerStore, deadletters: DeadLetterStore
) -> None:
    event = lambda_event("mq-poison")
    first = notifications.handle_mq(event, POLICY, table_store, deadletters, clock)
    before = pending(table_store)
    second = notifications.handle_mq(event, POLICY, table_store, deadletters, clock)

    assert pending(table_store) == before
    assert second.written == 0 and second.unchanged == first.written
    letters = list(deadletters.list())
    assert len(letters) == 3, "one dead letter per distinct body, not per delivery"
    assert {d.deliveries for d in letters} == {2}


def test_transient_store_error_fails_the_whole_mq_batch(
    table_store: DynamoTimerStore, deadletters: DeadLetterStore
) -> None:
    store = BrokenStore(table_store, "ProvisionedThroughputExceededException", after=1)
    with pytest.raises(StoreError):
        notifications.handle_mq(lambda_event("mq-notifications"), POLICY, store, deadletters, clock)
    assert list(deadletters.list()) == [], "a transient failure is retried, not dead-lettered"


def test_store_rejecting_a_record_is_poison_not_a_retry(
    table_store: DynamoTimerStore, deadletters: DeadLetterStore
) -> None:
    store = BrokenStore(table_store, "ValidationException")
    result = notifications.handle_mq(
        lambda_event("mq-notifications"), POLICY, store, deadletters, clock
    )
    assert len(result.dead_lettered) == 3
    assert all("store rejected" in d.reason for d in deadletters.list())


def test_policy_handler_crash_is_dead_lettered(
    table_store: DynamoTimerStore, deadletters: DeadLetterStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(notification: Any, policy: PolicySettings) -> list[TimerCommand]:
        raise KeyError("flavor")

    monkeypatch.setattr(routes, "decide", crash)
    result = notifications.handle_mq(
        lambda_event("mq-notifications"), POLICY, table_store, deadletters, clock
    )
    assert result.applied == 0 and len(result.dead_lettered) == 3  # the unknown type is ignored
    assert all("KeyError" in d.reason for d in deadletters.list())


def test_batch_fails_when_a_dead_letter_cannot_be_kept(table_store: DynamoTimerStore) -> None:
    class Unwritable:
        def keep(self, letter: Any) -> None:
            raise StoreError("update_item: unreachable")

    with pytest.raises(StoreError):
        notifications.handle_mq(lambda_event("mq-poison"), POLICY, table_store, Unwritable(), clock)


def test_dead_letters_survive_dynamodb_reserved_words(store: DynamoTimerStore) -> None:
    """``source``, ``body``... are aliased: dynalite rejects reserved words as DynamoDB does."""
    letters = DeadLetterStore.beside(store)
    result = notifications.handle_mq(lambda_event("mq-poison"), POLICY, store, letters, clock)
    assert {d.ref for d in letters.list()} == set(result.dead_lettered)


def test_binary_poison_body_is_kept_as_base64(
    table_store: DynamoTimerStore, deadletters: DeadLetterStore
) -> None:
    body = b"\xff\xfe not utf-8"
    notifications.handle_mq(mq_event([body]), POLICY, table_store, deadletters, clock)
    (letter,) = deadletters.list()
    assert letter.body_encoding == "base64"
    assert base64.b64decode(letter.body) == body
    assert "not UTF-8" in letter.reason


# -- SQS ---------------------------------------------------------------------------------


def test_sqs_partial_failure_reports_exactly_the_bad_records(table_store: DynamoTimerStore) -> None:
    result = notifications.handle_sqs(lambda_event("sqs-partial-failure"), POLICY, table_store)
    assert notifications.sqs_response(result) == {
        "batchItemFailures": [
            {"itemIdentifier": "bad-truncated-body"},
            {"itemIdentifier": "bad-payload"},
        ]
    }
    assert result.applied == 2
    assert len({t.resource_id for t in table_store.pending()}) == 2


def test_sqs_clean_batch_reports_no_failures(table_store: DynamoTimerStore) -> None:
    result = notifications.handle_sqs(lambda_event("sqs-notifications"), POLICY, table_store)
    assert notifications.sqs_response(result) == {"batchItemFailures": []}
    assert (result.applied, result.ignored) == (3, 1)


def test_sqs_store_outage_returns_the_failing_record_and_all_after_it(
    table_store: DynamoTimerStore,
) -> None:
    store = BrokenStore(table_store, "InternalServerError", after=1)
    result = notifications.handle_sqs(lambda_event("sqs-notifications"), POLICY, store)
    assert result.failed == ["m-1", "m-2", "m-3"]
    assert result.applied == 1


def test_handle_answers_each_source_in_its_own_terms(
    table_store: DynamoTimerStore, deadletters: DeadLetterStore
) -> None:
    mq = notifications.handle(
        lambda_event("mq-notifications"), POLICY, table_store, deadletters, clock
    )
    sqs = notifications.handle(
        lambda_event("sqs-notifications"), POLICY, table_store, deadletters, clock
    )
    assert mq["received"] == 4 and "batchItemFailures" not in mq
    assert sqs == {"batchItemFailures": []}
