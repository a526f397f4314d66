"""A stateful simulated OpenStack cloud (Keystone, Nova, Glance, Cinder, Neutron, Swift).

It serves the real APIs over HTTP on 127.0.0.1 so openstacksdk runs unpatched against it,
emits the notifications the real services would through oslo.messaging, keeps a simulated
clock, injects faults and logs requests::

    from reclaim_sim import Cloud, SimClock, SimConfig, SimServer
    from reclaim_sim.scenario import build_cloud, demo_scenario_path

    cloud = Cloud(clock=SimClock(start), config=SimConfig(notification_format="both"),
                  transport_url="kombu+memory:////")       # or build_cloud("scenario.yaml")
    project = cloud.identity.create_project("astro")       # in-process changes...
    with SimServer(cloud) as server:                        # ...or over HTTP
        conn = server.connect()                             # admin Connection
        server.write_clouds_yaml("clouds.yaml")             # sim-admin, sim-<project>
        cloud.clock.advance(timedelta(days=14))
        cloud.faults.add(service="compute", method="POST", status=503, count=2)
        assert cloud.requests.mutating_requests() == []

Every change goes through a service state (``cloud.compute``, ``cloud.image``...) whose
methods hold the cloud's lock and queue notifications, sent when the change completes.
"""

from reclaim_sim.clock import SimClock
from reclaim_sim.cloud import Cloud
from reclaim_sim.core import Ctx, SimConfig, SimError
from reclaim_sim.faults import FaultRule, Faults, RequestLog, RequestRecord
from reclaim_sim.notify import Notification, Notifier, OsloSink, RecordingSink
from reclaim_sim.server import ADMIN_CLOUD, SimServer, make_app

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
