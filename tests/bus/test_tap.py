"""The tests' tap on reclaim's bus (tests/support/bus_tap.py): it sees what reclaim
publishes, and the broker removes one that was left behind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reclaim.bus.settings import BusSettings
from reclaim.notices import NoticeMessage
from reclaim.sweeper.notices import OsloNotices
from tests.bus.conftest import RABBIT, rabbitmqctl
from tests.support.bus_tap import BusTap
from tests.support.waiting import wait_for

pytestmark = pytest.mark.rabbitmq

DUE = datetime(2026, 3, 15, 9, tzinfo=UTC)


def queues(vhost: str) -> list[str]:
    """The vhost's queues, as the broker lists them (a listing is no use of a queue)."""
    out = rabbitmqctl("list_queues", "-p", vhost, "name", "--quiet", "--no-table-headers")
    return out.split()


def test_a_tap_sees_the_notices_and_alerts_reclaim_publishes(fresh_vhost: str) -> None:
    url = f"rabbit://guest:guest@{RABBIT}/{fresh_vhost}"
    tap = BusTap(url)
    notices = OsloNotices(BusSettings(transport_url=url))
    try:
        notices.publish(NoticeMessage(kind="shelve_upcoming", resource_type="server",
                                      resource_id="s1", action="shelve", due_at=DUE))  # fmt: skip
        notices.publish(NoticeMessage(kind="action_failed", resource_type="server",
                                      resource_id="s1", detail={"reason": "409"}))  # fmt: skip
    finally:
        notices.close()
    wait_for(lambda: len(tap.kinds("s1")) >= 2, timeout=60)
    assert tap.kinds("s1") == ["shelve_upcoming", "action_failed"]
    assert tap.queue.name in queues(fresh_vhost)
    tap.close()
    assert tap.queue.name not in queues(fresh_vhost)


def test_a_tap_left_behind_is_removed_by_the_broker(fresh_vhost: str) -> None:
    """A test killed before it closed its tap leaves no queue collecting every notice."""
    tap = BusTap(f"rabbit://guest:guest@{RABBIT}/{fresh_vhost}", expires=timedelta(seconds=15))
    assert tap.queue.name in queues(fresh_vhost)
    wait_for(lambda: tap.queue.name not in queues(fresh_vhost), timeout=120, every=1)
