"""``reclaim sweep`` killed with SIGKILL mid-sweep, then run again: every due action is done
exactly once (counted in the simulated cloud's request log), timers in a real dynalite."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from reclaim.store import open_store
from reclaim_sim import SimServer
from tests.support.dynalite import Dynalite
from tests.sweeper.conftest import NOW, World

RECLAIM = Path(sys.executable).with_name("reclaim")


@pytest.fixture
def own_dynalite(tmp_path: Path) -> Iterator[Dynalite]:
    """A dynalite of this test's own: a client killed mid-request can take dynalite down
    with it, and then it is restarted on the same data."""
    server = Dynalite(tmp_path / "data").start()
    yield server
    server.stop()


@pytest.mark.dynalite
def test_kill_9_mid_sweep_then_rerun_acts_exactly_once(
    world: World, sim_server: SimServer, own_dynalite: Dynalite, tmp_path: Path
) -> None:
    dynalite = own_dynalite
    url = f"{dynalite.url}/kill-{id(world)}"
    world.store = open_store(url)
    sids = [world.server() for _ in range(30)]
    for sid in sids:
        world.timer(sid)
    sim_server.write_clouds_yaml(tmp_path / "clouds.yaml")
    env = {
        **os.environ,
        "OS_CLIENT_CONFIG_FILE": str(tmp_path / "clouds.yaml"),
        "OS_CLOUD": "sim-admin",
        "RECLAIM_BUS__TRANSPORT_URL": "kombu+memory:////",
        "RECLAIM_SWEEP__MIN_NOTICE_LEAD": "0s",
        "RECLAIM_SWEEP__MAX_ACTIONS": "1000",
        "RECLAIM_SWEEP__MAX_ACTIONS_PER_PROJECT": "1000",
        "RECLAIM_SWEEP__PARALLELISM": "2",
    }
    # every shelve takes 0.2 s, so the kill lands with some done and some not
    slow = world.cloud.faults.add(
        service="compute", method="POST", path_regex="/action", status=None, delay=0.2
    )
    world.cloud.requests.clear()
    cmd = [str(RECLAIM), "sweep", "--store", url, "--now", NOW.isoformat(), "--json"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while sum(world.shelves(s) for s in sids) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    world.cloud.faults.remove(slow)
    dynalite.ensure_serving()  # restarted on the same data if the kill took it down
    done_before = sum(world.shelves(s) for s in sids)
    assert 5 <= done_before < len(sids)

    # the dead sweeper's leases expire after 10 minutes; the rerun finishes the rest
    later = (NOW + timedelta(minutes=11)).isoformat()
    rerun = subprocess.run(
        [str(RECLAIM), "sweep", "--store", url, "--now", later, "--json"],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert rerun.returncode == 0, rerun.stderr.decode()[-2000:]
    assert [world.shelves(s) for s in sids] == [1] * len(sids)
    states = [t.state for s in sids for t in world.store.timers_for("server", s)]
    assert states == ["done"] * len(sids)
