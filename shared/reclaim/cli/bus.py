"""Commands that talk to the message bus (``listen``, ``publish``, ``deadletters``...)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the bus commands to ``app``."""
