"""``python -m reclaim.sim``: the same commands as ``reclaim sim``."""

from reclaim.sim.cli import app

app(prog_name="reclaim sim")
