"""Durations as operators write them in settings files and environment variables."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from reclaim.durations import format_duration, parse_duration
from reclaim.settings import PolicySettings


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("14d", timedelta(days=14)),
        ("1w2d", timedelta(days=9)),
        ("36h", timedelta(hours=36)),
        ("90m", timedelta(minutes=90)),
        (" 1d 12h ", timedelta(days=1, hours=12)),
        ("0", timedelta(0)),
        (0, timedelta(0)),
    ],
)
def test_durations_with_units_parse_and_print_back(text: object, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert parse_duration(format_duration(expected)) == expected


@pytest.mark.parametrize("value", [14, 14.5, "14", "2.5"])
def test_a_number_without_a_unit_is_refused_not_taken_as_seconds(value: object) -> None:
    with pytest.raises(ValueError, match="needs a unit"):
        parse_duration(value)


def test_a_setting_without_a_unit_names_the_fix() -> None:
    """``shelve_after: 14`` in a settings file used to mean 14 seconds."""
    with pytest.raises(ValidationError, match=r"needs a unit: 14 \(write e\.g\. 14d"):
        PolicySettings(shelve_after=14)  # type: ignore[arg-type]
    assert PolicySettings(shelve_after="14d").shelve_after == timedelta(days=14)
