"""The fidelity table's comparison rules (tests/openstack/fidelity.py): a race of the real
services' pace is not a difference, anything else is."""

from __future__ import annotations

from pathlib import Path

from tests.openstack import fidelity


class _Probe:
    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], fidelity.Value] = {}

    def record(self, request: str, aspect: str, value: fidelity.Value) -> None:
        self.seen[(request, aspect)] = value


def _states(*seen: tuple[str, ...] | None) -> dict[tuple[str, str], fidelity.Value]:
    probe = _Probe()
    fidelity.transition(probe, "POST /x", list(seen))  # type: ignore[arg-type]
    return probe.seen


def test_a_building_server_compares_whatever_task_state_shows() -> None:
    real = _states(("BUILD", ""), ("ACTIVE", ""))  # nova-compute had taken it: none
    sim = _states(("BUILD", "scheduling"), ("ACTIVE", ""))
    assert all(row.same for row in fidelity.compare(real, sim))


def test_a_real_service_quicker_than_the_first_read_is_not_a_difference() -> None:
    real = _states(("SHUTOFF", ""))
    sim = _states(("ACTIVE", "powering-off"), ("SHUTOFF", ""))
    rows = fidelity.compare(real, sim)
    assert all(row.same for row in rows)
    assert [row.real for row in rows] == [fidelity.RACED, "SHUTOFF/-"]


def test_a_different_state_is_still_a_difference(tmp_path: Path) -> None:
    real = _states(("ACTIVE", "powering-off"), ("SHUTOFF", ""))
    sim = _states(("SHUTOFF", ""), ("ERROR", ""))
    doc = tmp_path / "fidelity.md"
    doc.write_text("## Accepted differences\n")
    assert fidelity.judge(fidelity.compare(real, sim), doc) == [
        "new difference: POST /x | state after | real ACTIVE, task state set "
        "| sim SHUTOFF, no task state",
        "new difference: POST /x | settles in | real SHUTOFF/- | sim ERROR/-",
    ]
