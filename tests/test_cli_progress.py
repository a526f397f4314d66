"""Commands that take more than a few seconds say what they are doing: a project cleanup
names what it deletes, ``reconcile`` and ``replay`` say how far they have got; on a
terminal a progress display, elsewhere JSON log lines of the one schema."""

from __future__ import annotations

import io
import itertools
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner, Result

from reclaim.cli import app
from reclaim.cli import progress as progress_module
from reclaim.cli.progress import Reporter
from reclaim.commands import iso_z
from reclaim.policy.projects import PROJECT_CLEANUP
from reclaim.store import open_store
from reclaim_sim import Cloud, SimClock, SimServer
from reclaim_sim.scenario import load_scenario
from tests.conftest import EVENTS
from tests.support.logs import log_records

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ENDED = NOW - timedelta(days=181)
_n = itertools.count(1)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    cloud = Cloud(clock=SimClock(NOW))
    with SimServer(cloud) as server:
        yield server
    cloud.close()


@pytest.fixture
def clouds(sim: SimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """clouds.yaml with the administrator (``OS_CLOUD``) and reclaim's cleanup user."""
    name = f"reclaim-cleaner-{next(_n)}"
    user = sim.cloud.identity.create_user(name, password="cleaner-pw")
    home = sim.cloud.identity.create_project(f"{name}-home")
    sim.cloud.identity.grant(user.id, home.id, "member")  # a role at home, none elsewhere
    path = sim.write_clouds_yaml(tmp_path / "clouds.yaml")
    config = yaml.safe_load(path.read_text())
    config["clouds"]["sim-cleaner"] = sim.cloud_config(name, home.name, "cleaner-pw")
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))
    monkeypatch.setenv("OS_CLOUD", "sim-admin")
    monkeypatch.setenv("RECLAIM_BUS__TRANSPORT_URL", "kombu+memory:////")
    return path


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "80"})


def progress_lines(result: Result) -> list[dict[str, Any]]:
    """The ``progress`` log lines of a command's stderr, each checked against the schema."""
    return [r for r in log_records(result.stderr.splitlines()) if r["event"] == "progress"]


def test_a_project_cleanup_says_what_it_is_deleting(sim: SimServer, clouds: Path) -> None:
    tag = next(_n)
    p = f"ended-{tag}"
    ids = load_scenario(
        sim.cloud,
        {
            "projects": [{"name": p, "properties": {"allocation_end": iso_z(ENDED)}}],
            "users": [{"name": f"u-{tag}", "roles": {p: "member"}}],
            "images": [{"name": f"{p}-img", "owner": p}],
            "networks": [{"name": f"{p}-net", "project": p, "cidr": "10.9.0.0/24"}],
            "volumes": [{"name": f"{p}-vol", "project": p, "size": 5}],
            "servers": [
                {"name": f"{p}-vm1", "project": p, "image": f"{p}-img", "network": f"{p}-net"}
            ],
        },
    )
    pid = ids[f"project:{p}"]
    url = f"memory://progress-{uuid.uuid4().hex[:8]}"
    open_store(url).apply(
        PROJECT_CLEANUP.schedule(
            pid, since=ENDED, delay=timedelta(days=180), event_time=ENDED, project_id=pid
        )
    )
    out = CliRunner().invoke(
        app,
        ["sweep", "--store", url, "--now", iso_z(NOW), "--no-dry-run"],
        env={"COLUMNS": "80", "RECLAIM_SWEEP__CLEANUP_CLOUD": "sim-cleaner"},
    )
    assert out.exit_code == 0, out.output
    steps = [r["step"] for r in progress_lines(out) if "step" in r]
    assert steps[0] == f"project {pid}: listing what it owns"
    assert f"project {pid}: deleting Server {ids[f'server:{p}-vm1']} ({p}-vm1)" in steps
    assert f"project {pid}: deleting Volume {ids[f'volume:{p}-vol']} ({p}-vol)" in steps
    assert any(s.startswith(f"project {pid}: deleting Network ") for s in steps), steps
    assert steps[-1].startswith(f"project {pid}: ") and steps[-1].endswith(" left"), steps
    assert not [s for s in sim.cloud.compute.servers.values() if s.project_id == pid]


def test_on_a_terminal_each_step_stays_above_the_display() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=80)
    with Reporter("sweep", "sweeping due timers", console=console) as progress:
        progress.step("project p1: deleting Server s1 (vm1)")
        progress.advance()
    assert "project p1: deleting Server s1 (vm1)" in screen.getvalue()


def test_counted_work_says_how_far_it_got_every_few_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    said: list[dict[str, Any]] = []
    monkeypatch.setattr(progress_module, "emit", lambda event, **f: said.append(f))
    now = itertools.count(0.0, 1.0)  # one second per look at the clock
    plain = Console(file=io.StringIO(), force_terminal=False)
    with Reporter("reconcile", "items read", console=plain, every=5, clock=lambda: next(now)) as r:
        for _ in range(12):
            r.advance(10)
    assert [s["done"] for s in said if not s.get("finished")] == [50, 100]
    assert said[-1]["finished"] is True and said[-1]["done"] == 120


def test_reconcile_over_a_cloud_and_replay_say_how_far_they_got(
    sim: SimServer, clouds: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress_module, "EVERY", 0.0)  # a line at every step of the work
    reconciled = cli("reconcile", "--dry-run", "--now", iso_z(NOW), "--store", "memory://rp")
    assert reconciled.exit_code == 0, reconciled.output
    counted = [r for r in progress_lines(reconciled) if r.get("command") == "reconcile"]
    assert counted and counted[-1]["finished"] is True and counted[-1]["done"] > 0
    assert [r["done"] for r in counted] == sorted(r["done"] for r in counted)

    replayed = cli("replay", str(EVENTS / "streams" / "demo.json"))
    assert replayed.exit_code == 0, replayed.output
    [*_, last] = [r for r in progress_lines(replayed) if r.get("command") == "replay"]
    stream = json.loads((EVENTS / "streams" / "demo.json").read_text())
    assert last["finished"] is True and last["done"] == len(stream)
