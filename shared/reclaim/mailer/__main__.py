"""``python -m reclaim.mailer``: the same as ``reclaim mailer``."""

import typer

from reclaim.cli.mailer import register

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
register(app)

if __name__ == "__main__":
    app()
