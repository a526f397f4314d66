"""``python -m reclaim_sim``: the same commands as ``reclaim sim``."""

from reclaim_sim.cli import app

app(prog_name="reclaim sim")
