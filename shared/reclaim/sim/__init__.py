"""A stateful simulated OpenStack cloud (Keystone, Nova, Glance, Cinder, Neutron, Swift).

It serves the real APIs over HTTP on 127.0.0.1 so openstacksdk runs unpatched against it,
emits the notifications the real services would through oslo.messaging, keeps a simulated
clock, injects faults and logs requests. See :class:`Cloud` and :class:`SimServer`.
"""

from reclaim.sim.clock import SimClock
from reclaim.sim.cloud import Cloud
from reclaim.sim.core import Ctx, SimConfig, SimError
from reclaim.sim.faults import FaultRule, Faults, RequestLog, RequestRecord
from reclaim.sim.notify import Notification, Notifier, OsloSink, RecordingSink
from reclaim.sim.server import ADMIN_CLOUD, SimServer, make_app

__all__ = [
    "ADMIN_CLOUD",
    "Cloud",
    "Ctx",
    "FaultRule",
    "Faults",
    "Notification",
    "Notifier",
    "OsloSink",
    "RecordingSink",
    "RequestLog",
    "RequestRecord",
    "SimClock",
    "SimConfig",
    "SimError",
    "SimServer",
    "make_app",
]
