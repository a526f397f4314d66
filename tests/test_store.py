"""The timer store contract, run against moto and a real dynalite server."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import boto3
import pytest
from botocore.exceptions import ClientError

from reclaim import routes
from reclaim.settings import PolicySettings
from reclaim.store import DynamoTimerStore, StoreError, open_store, schema
from reclaim.store.dynamodb import DUE_INDEX, SHARDS
from reclaim.timers import AuditEntry, close
from tests.support.builders import SERVER, T0, days, event, server_body

POLICY = PolicySettings()


def deliver(store: DynamoTimerStore, *bodies: dict) -> None:  # type: ignore[type-arg]
    for body in bodies:
        store.apply(routes.commands_for(body, POLICY))


def test_schedule_then_cancel(store: DynamoTimerStore) -> None:
    deliver(store, server_body("stopped", T0))
    [shelve] = [t for t in store.pending() if t.rule == "shelve"]
    assert shelve.due_at == T0 + days(14) and shelve.state == "pending"
    deliver(store, server_body("active", T0 + days(2)))
    assert list(store.pending()) == []
    states = {t.rule: t.state for t in store.timers_for("server", SERVER)}
    assert states == {"shelve": "cancelled", "delete-shelved": "cancelled"}


def test_duplicate_and_older_events_change_nothing(store: DynamoTimerStore) -> None:
    deliver(store, server_body("stopped", T0))
    before = store.timers_for("server", SERVER)
    result = store.apply(routes.commands_for(server_body("stopped", T0), POLICY))
    assert result.written == 0 and result.unchanged == 2
    deliver(store, server_body("active", T0 + days(1)), server_body("stopped", T0))
    assert list(store.pending()) == []
    assert [t.version for t in before] == [1, 1]


def test_pending_reads_the_due_index_in_due_order(store: DynamoTimerStore) -> None:
    for i in range(20):
        deliver(store, server_body("stopped", T0 + timedelta(hours=i), server=f"server-{i:02d}"))
    due = list(store.pending(T0 + days(7) + timedelta(hours=4, minutes=30)))
    # the first notice of servers 0..4 (7 days before their shelve) is due by then
    assert [t.resource_id for t in due] == [f"server-{i:02d}" for i in range(5)]
    everything = [t.next_due() for t in store.pending()]
    assert everything == sorted(everything) and len(everything) == 20


def test_pending_never_scans_the_table(
    store: DynamoTimerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    deliver(store, server_body("stopped", T0))
    calls: list[tuple[str, dict]] = []  # type: ignore[type-arg]
    real = store.client.query

    def spy(**kwargs: object) -> object:
        calls.append(("query", kwargs))
        return real(**kwargs)

    monkeypatch.setattr(
        store.client, "scan", lambda **kw: pytest.fail("pending() scanned the table")
    )
    monkeypatch.setattr(store.client, "query", spy)
    assert len(list(store.pending(T0 + days(30)))) == 1
    assert len(calls) == SHARDS and all(kw["IndexName"] == DUE_INDEX for _, kw in calls)


def test_closed_timers_leave_the_due_index(store: DynamoTimerStore) -> None:
    deliver(store, server_body("stopped", T0))
    [t] = [t for t in store.pending() if t.rule == "shelve"]
    done = close(t, "done", AuditEntry(at=T0 + days(14), what="shelve", outcome="shelved"))
    assert store.replace(t, done) is not None
    assert list(store.pending()) == []
    [stored] = [x for x in store.timers_for("server", SERVER) if x.rule == "shelve"]
    assert stored.state == "done" and stored.history[-1].outcome == "shelved"


def test_replace_is_compare_and_set(store: DynamoTimerStore) -> None:
    deliver(store, server_body("stopped", T0))
    [t] = [t for t in store.pending() if t.rule == "shelve"]
    first = store.replace(t, t.model_copy(update={"attempts": 1}))
    second = store.replace(t, t.model_copy(update={"attempts": 2}))
    assert first is not None and second is None
    [stored] = [x for x in store.timers_for("server", SERVER) if x.rule == "shelve"]
    assert stored.attempts == 1 and stored.version == t.version + 1


def test_wildcard_cancel_reaches_every_rule_of_a_resource(store: DynamoTimerStore) -> None:
    deliver(store, server_body("stopped", T0))
    assert list(store.pending())
    cmds = routes.decide(
        event("image.delete", {"id": SERVER, "deleted": True}, T0 + days(1)), POLICY
    )
    cmds = [dataclasses.replace(c, resource_type="server") for c in cmds]
    store.apply(cmds)
    assert list(store.pending()) == []


def test_items_use_no_reserved_word_unescaped(dynalite: object) -> None:
    # dynalite rejects reserved words in expressions as DynamoDB does; moto accepts some.
    store = open_store(f"{dynalite.url}/reserved-words")  # type: ignore[attr-defined]
    deliver(store, server_body("stopped", T0), server_body("shelved", T0 + days(1)))
    assert [t.rule for t in store.pending()] == ["delete-shelved"]


def test_table_is_built_from_the_template(store: DynamoTimerStore) -> None:
    described = store.client.describe_table(TableName=store.table)["Table"]
    request = schema.create_table_request(store.table)
    assert described["KeySchema"] == request["KeySchema"]
    assert [i["IndexName"] for i in described["GlobalSecondaryIndexes"]] == [DUE_INDEX]


def test_unreachable_store_raises_store_error() -> None:
    store = DynamoTimerStore(
        boto3.client("dynamodb", endpoint_url="http://127.0.0.1:9", region_name="us-east-1",
                     aws_access_key_id="x", aws_secret_access_key="x",
                     config=__import__("botocore.config").config.Config(retries={"max_attempts": 0}, connect_timeout=0.5)),
        "nowhere",
    )  # fmt: skip
    with pytest.raises(StoreError):
        store.apply(routes.commands_for(server_body("stopped", T0), POLICY))


def test_missing_table_is_a_clear_error(dynalite: object) -> None:
    store = open_store(f"{dynalite.url}/never-created", create=False)  # type: ignore[attr-defined]
    with pytest.raises(StoreError, match="never-created"):
        list(store.pending())
    with pytest.raises(ClientError):
        store.client.describe_table(TableName="never-created")


def test_unknown_store_url() -> None:
    with pytest.raises(ValueError, match="unknown store URL"):
        open_store("redis://localhost")


def test_wildcard_cancel_reaches_rules_created_in_the_same_batch(store: DynamoTimerStore) -> None:
    hidden = event("image.update", {"id": "img-9", "os_hidden": True}, T0)
    deleted = event("image.delete", {"id": "img-9", "deleted": True}, T0 + days(1))
    one_batch = routes.decide(hidden, POLICY) + routes.decide(deleted, POLICY)
    store.apply(one_batch)
    assert list(store.pending()) == []
    assert {t.state for t in store.timers_for("image", "img-9")} == {"cancelled"}


def test_get_many_reads_the_timers_of_many_keys_at_once(store: DynamoTimerStore) -> None:
    ids = [f"srv-{i}" for i in range(150)]
    store.apply(
        [c for i in ids[:120] for c in routes.commands_for(server_body("stopped", T0, i), POLICY)]
    )
    keys = [("server", i, rule) for i in ids for rule in ("shelve", "delete-shelved")]
    found = store.get_many(keys + keys[:10])  # more than one batch of 100; repeats are fine
    assert set(found) == set(keys[:240])  # the servers that had events; none for the rest
    shelve = [t for k, t in found.items() if k[2] == "shelve"]
    assert len(shelve) == 120
    assert all(t.state == "pending" and t.due_at == T0 + days(14) for t in shelve)
    assert {t.state for k, t in found.items() if k[2] == "delete-shelved"} == {"cancelled"}
    assert store.get_many([]) == {}


def test_pending_pages_lists_every_pending_timer_a_bounded_page_at_a_time(
    store: DynamoTimerStore,
) -> None:
    store.apply(
        [
            c
            for i in range(90)
            for c in routes.commands_for(
                server_body("stopped" if i % 3 else "active", T0, f"srv-{i}"), POLICY
            )
        ]
    )
    pages = list(store.pending_pages(page_size=7))
    assert pages and all(1 <= len(p) <= 7 for p in pages)
    listed = [t.key for p in pages for t in p]
    assert sorted(listed) == sorted(t.key for t in store.pending())
    assert len(listed) == 60 and {t.state for p in pages for t in p} == {"pending"}


def test_an_event_touching_two_rules_of_a_server_is_one_conditional_write(
    store: DynamoTimerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop starts the shelve rule and closes delete-shelved: one item, one write."""
    puts: list[dict] = []  # type: ignore[type-arg]
    real = store.client.put_item

    def spy(**kwargs: object) -> object:
        puts.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(store.client, "put_item", spy)
    result = store.apply(routes.commands_for(server_body("stopped", T0), POLICY))
    assert result.written == 2 and len(puts) == 1
    assert "ConditionExpression" in puts[0]
    result = store.apply(routes.commands_for(server_body("active", T0 + days(1)), POLICY))
    assert result.written == 2 and len(puts) == 2
    assert {t.rule: t.state for t in store.timers_for("server", SERVER)} == {
        "delete-shelved": "cancelled",
        "shelve": "cancelled",
    }


def test_replace_goes_through_when_only_another_rule_of_the_resource_changed(
    store: DynamoTimerStore,
) -> None:
    deliver(store, server_body("stopped", T0))
    [t] = [t for t in store.pending() if t.rule == "shelve"]
    # A later cancel of the other rule (delete-shelved) bumps the resource's item...
    [other] = [
        c for c in routes.commands_for(server_body("stopped", T0), POLICY) if c.op == "cancel"
    ]
    store.apply([dataclasses.replace(other, event_time=T0 + timedelta(hours=1))])
    # ...yet a sweeper holding the shelve timer it read still claims it,
    claimed = store.replace(t, t.model_copy(update={"attempts": 1}))
    assert claimed is not None and claimed.attempts == 1
    # and a stale copy of the shelve timer itself is refused.
    assert store.replace(t, t.model_copy(update={"attempts": 5})) is None
    stored = {x.rule: x for x in store.timers_for("server", SERVER)}
    assert stored["shelve"].attempts == 1
    assert stored["delete-shelved"].closed_at == T0 + timedelta(hours=1)


def test_a_claim_goes_through_when_claims_of_the_resources_other_timers_come_first(
    store: DynamoTimerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweeper's threads claim a project's three due timers at once. Each write that
    another claim beat reads the item again and goes through: the rule's own timer did not
    change (a single sweeper reported these as contended, and left them for the next sweep)."""
    ended = event("allocation.ended", {"project_id": "proj-1", "end_date": T0.isoformat()}, T0)
    store.apply(routes.decide(ended, POLICY))
    first, *others = [t for t in store.timers_for("project", "proj-1") if t.state == "pending"]
    assert len(others) == 2
    sibling = DynamoTimerStore(store.client, store.table)  # the other threads' claims
    real_put = store.client.put_item
    pending_siblings = iter(others)
    inside = False

    def put_item(**kwargs: object) -> object:
        nonlocal inside
        if not inside and (other := next(pending_siblings, None)) is not None:
            inside = True  # just before this write, another thread claims a sibling timer
            try:
                assert sibling.replace(other, other.model_copy(update={"attempts": 1}))
            finally:
                inside = False
        return real_put(**kwargs)

    monkeypatch.setattr(store.client, "put_item", put_item)
    claimed = store.replace(first, first.model_copy(update={"attempts": 1}))

    assert claimed is not None and next(pending_siblings, None) is None
    assert {t.rule: t.attempts for t in store.timers_for("project", "proj-1")} == {
        first.rule: 1,
        **{o.rule: 1 for o in others},
    }


def test_pending_keeps_due_order_across_resources_with_several_due_timers(
    store: DynamoTimerStore,
) -> None:
    """A project whose allocation ended has three pending timers falling due months apart;
    servers fall due in between: the due index still yields every timer in due order."""
    ended = event("allocation.ended", {"project_id": "proj-1", "end_date": T0.isoformat()}, T0)
    store.apply(routes.decide(ended, POLICY))
    for i in range(12):
        at = T0 + days(15 * i)
        deliver(store, server_body("stopped", at, server=f"srv-{i:02d}"))
    due = [(t.next_due(), t.key) for t in store.pending()]
    assert due == sorted(due)
    assert {k[2] for _, k in due if k[0] == "project"} == {
        "project-cleanup",
        "image-dependents",
        "image-dependents-reminder",
    }
    until = T0 + days(100)
    assert [(t.next_due(), t.key) for t in store.pending(until)] == [
        d for d in due if d[0] <= until
    ]


def test_an_image_deleted_before_its_earlier_events_arrive_keeps_no_warning(
    store: DynamoTimerStore,
) -> None:
    """Concurrent batches can store an image's delete before its (earlier) update: the
    delete still wins, as it would have in order."""
    hidden = event("image.update", {"id": "img-7", "os_hidden": True}, T0)
    deleted = event("image.delete", {"id": "img-7", "deleted": True}, T0 + days(1))
    store.apply(routes.decide(deleted, POLICY))
    store.apply(routes.decide(hidden, POLICY))
    assert list(store.pending()) == []
    assert {t.state for t in store.timers_for("image", "img-7")} == {"cancelled"}
    # A later event about the image (the delete was at T0 + 1 day) still counts.
    later = event("image.update", {"id": "img-7", "os_hidden": True}, T0 + days(2))
    store.apply(routes.decide(later, POLICY))
    assert {t.rule for t in store.pending()} == {"eol-image", "eol-image-reminder"}


def test_claiming_a_timer_read_from_the_due_index_costs_one_write_and_no_read(
    store: DynamoTimerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    deliver(store, server_body("stopped", T0))
    [t] = list(store.pending(T0 + days(30)))
    reads: list[object] = []
    real = store.client.get_item
    monkeypatch.setattr(store.client, "get_item", lambda **kw: reads.append(kw) or real(**kw))
    claimed = store.replace(t, t.model_copy(update={"lease_owner": "me"}))
    assert claimed is not None
    done = store.replace(claimed, claimed.model_copy(update={"lease_owner": None, "attempts": 1}))
    assert done is not None and reads == []
    # Another process (a store of its own) changes the timer: it reads the item first;
    # our copy is stale now, so our write is refused, re-read, and the claim declined.
    other = DynamoTimerStore(store.client, store.table)
    assert other.replace(done, done.model_copy(update={"attempts": 2})) is not None
    assert len(reads) == 1
    assert store.replace(done, done.model_copy(update={"attempts": 9})) is None
    assert len(reads) == 2
    [stored] = [x for x in store.timers_for("server", SERVER) if x.rule == "shelve"]
    assert stored.attempts == 2
