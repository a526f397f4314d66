"""``reclaim sweep``'s table through the shared output layer: it fits 80 columns, ids whole
or as a prefix that ``audit`` takes."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from reclaim.cli import sweep as sweep_cli
from tests.sweeper.conftest import NOW, World

app = typer.Typer()
sweep_cli.register(app)
runner = CliRunner()


@pytest.fixture
def env(cli_store: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COLUMNS", "80")
    return cli_store


def test_the_sweep_table_fits_80_columns_and_its_ids_reach_audit(world: World, env: str) -> None:
    servers = [world.server() for _ in range(3)]
    for sid in servers:
        world.timer(sid)
    out = runner.invoke(app, ["sweep", "--store", env, "--now", NOW.isoformat(), "--dry-run"])
    assert out.exit_code == 0, out.output
    assert all(len(line) <= 80 for line in out.stdout.splitlines()), out.stdout
    words = re.findall(r"[\w-]+", out.stdout)
    for sid in servers:
        [short] = [w for w in words if len(w) >= 8 and sid.startswith(w)]
        audit = runner.invoke(app, ["audit", "server", short, "--store", env])
        assert audit.exit_code == 0 and audit.stdout.startswith(f"server {sid}"), audit.output
    empty = runner.invoke(app, ["sweep", "--store", env, "--now", "2000-01-01", "--dry-run"])
    assert empty.stdout.startswith("Sweep (dry run: nothing changed): nothing to show\n")
