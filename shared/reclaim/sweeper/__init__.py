"""The sweeper: carries out due timers on the cloud, safely (see DESIGN §5, §6)."""

from reclaim.sweeper.breaker import Breaker, BreakerState
from reclaim.sweeper.cloud import ActionResult, CloudError, CloudPort, OpenStackCloud
from reclaim.sweeper.notices import NoticeMessage, NoticePort, OsloNotices, RecordingNotices
from reclaim.sweeper.rules import Decision, ServerSnapshot, decide_delete, decide_shelve
from reclaim.sweeper.sweep import Outcome, Sweeper, SweepReport

__all__ = [
    "ActionResult",
    "Breaker",
    "BreakerState",
    "CloudError",
    "CloudPort",
    "Decision",
    "NoticeMessage",
    "NoticePort",
    "OpenStackCloud",
    "OsloNotices",
    "Outcome",
    "RecordingNotices",
    "ServerSnapshot",
    "SweepReport",
    "Sweeper",
    "decide_delete",
    "decide_shelve",
]
