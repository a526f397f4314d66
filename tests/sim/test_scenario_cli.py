"""Seed scenarios and ``reclaim sim serve``."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import openstack
import pytest
import yaml

from reclaim.durations import parse_duration
from reclaim.settings import PolicySettings
from reclaim_sim.scenario import build_cloud, demo_scenario_path


def test_parse_duration() -> None:
    assert parse_duration("20d") == timedelta(days=20)
    assert parse_duration("90m") == timedelta(minutes=90)
    with pytest.raises(ValueError, match="needs a unit"):
        parse_duration(45)
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_demo_scenario_seeds_states_ages_and_owners() -> None:
    cloud = build_cloud(demo_scenario_path())
    try:
        now = cloud.clock.now()
        servers = {s.name: s for s in cloud.compute.servers.values()}
        assert servers["astro-idle"].status == "SHUTOFF"
        assert now - servers["astro-idle"].updated_at == timedelta(days=20)
        assert servers["genomics-old"].status == "SHELVED_OFFLOADED"
        assert servers["genomics-locked"].locked
        # exempt by the key the policy reads by default
        assert servers["astro-keep"].metadata == {PolicySettings().exempt_metadata_key: "true"}
        genomics = cloud.identity.project("genomics")
        assert genomics.properties["allocation_end"] == "2025-08-31"
        toolkit = next(i for i in cloud.image.images.values() if i.name == "genomics-toolkit")
        assert (toolkit.owner, toolkit.visibility) == (genomics.id, "community")
        assert servers["teaching-lab"].image_id == toolkit.id
        assert cloud.identity.user("nomail").email is None
        assert cloud.requests.all() == []
    finally:
        cloud.close()


def test_serve_prints_how_to_connect_and_stops_on_ctrl_c(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clouds = tmp_path / "clouds.yaml"
    proc = subprocess.Popen(
        [sys.executable, "-m", "reclaim_sim", "serve", "--clouds-yaml", str(clouds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, COLUMNS="200"),
    )
    assert proc.stdout is not None
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C" in line:
                break
        text = "".join(lines)
        assert re.search(r"at http://127\.0\.0\.1:\d+", text), text
        assert f"OS_CLIENT_CONFIG_FILE={clouds}" in text and "OS_CLOUD=sim-admin" in text
        # what the README promises: the openstack client, the clock, the cleanup's setting
        url = re.search(r"at (http://127\.0\.0\.1:\d+)", text)
        assert url and f"reclaim sweep --now {url[1]}\n" in text
        assert f"reclaim run --now {url[1]}\n" in text and "/_sim/clock" in text
        assert "openstack server stop SERVER" in text and "openstack server list" in text
        cleaner = re.search(r"export RECLAIM_SWEEP__CLEANUP_CLOUD=(\S+)", text)
        assert cleaner and "sweep.cleanup_cloud" in text
        entries = yaml.safe_load(clouds.read_text())["clouds"]
        assert cleaner[1] in entries and cleaner[1] != "sim-admin"
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
        conn = openstack.connect(cloud="sim-admin")
        names = {s.name for s in conn.compute.servers(all_projects=True)}
        assert "astro-pipeline" in names
        member = openstack.connect(cloud="sim-astro")
        assert all(s.project_id == member.current_project_id for s in member.compute.servers())
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
