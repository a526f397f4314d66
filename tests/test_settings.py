"""Settings from the environment: a mistyped variable is an error, not a silent default."""

from __future__ import annotations

from datetime import timedelta

import pytest
from typer.testing import CliRunner

from reclaim.cli import app
from reclaim.settings import PolicySettings, load_settings, unknown_variables

runner = CliRunner()


@pytest.mark.parametrize(
    "name",
    ["RECLAIM_POLCY__SHELVE_AFTER", "RECLAIM_POLICY_SHELVE_AFTER", "RECLAIM_STORE_UR"],
)
def test_a_variable_naming_no_setting_stops_the_command(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, "30d")
    result = runner.invoke(app, ["timers", "list"])
    assert result.exit_code == 2
    assert f"{name}: no such setting" in result.output and "Traceback" not in result.output


def test_known_variables_and_the_non_settings_ones_are_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RECLAIM_POLICY__SHELVE_AFTER", "30d")
    monkeypatch.setenv("RECLAIM_STORE_URL", "memory://settings-test")
    monkeypatch.setenv("RECLAIM_PIP_BUILD", "0")
    assert unknown_variables({"RECLAIM_CONFIG": "x", "RECLAIM_TEMPLATE": "y", "HOME": "/"}) == []
    settings = load_settings()
    assert settings.policy.shelve_after == timedelta(days=30)
    assert settings.store_url == "memory://settings-test"


def test_a_notice_further_ahead_than_its_rules_period_is_refused() -> None:
    """A 20-day notice before a 14-day shelve would fall before the server even stopped."""
    with pytest.raises(ValueError, match=r"shelve_notices 20d before the action: longer than"):
        PolicySettings(shelve_notices=["20d"])
    assert PolicySettings(shelve_after="30d", shelve_notices=["20d"]).shelve_notices == (
        timedelta(days=20),
    )


def test_a_bad_value_is_one_line_naming_the_setting_and_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RECLAIM_POLICY__SHELVE_AFTER", "14")
    result = runner.invoke(app, ["timers", "list"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "reclaim: error: settings: policy.shelve_after: a duration needs a unit: '14' "
        "(write e.g. 14d, 14h, 14s) (got '14')"
    )
