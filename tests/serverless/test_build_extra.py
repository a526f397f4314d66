"""``reclaim build`` where the optional template checkers are not installed."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

from reclaim.cli import app


def test_build_check_without_the_build_extra_names_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The README's install has no cfn-lint or SAM translator: say how to add them, one line."""
    for name in [m for m in sys.modules if m == "cfnlint" or m.startswith("cfnlint.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "cfnlint", None)  # makes `import cfnlint...` fail

    result = CliRunner().invoke(app, ["build", "--check"])

    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "pip install -c constraints.txt -e '.[build]'" in result.output
    assert "cfnlint" in result.output
