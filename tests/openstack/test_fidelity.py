"""Fidelity: the simulated cloud answers the requests reclaim makes (and those of the
README's walk-through) as the real services do, but for the differences
``docs/sim-fidelity.md`` lists with their reasons. A new difference fails, and so does one
that closed while the document still lists it; the table is written to build/fidelity.md."""

from __future__ import annotations

from tests.openstack import fidelity, harness


def test_the_simulation_differs_from_the_real_services_only_as_documented(
    cloud: harness.Run,
) -> None:
    rows = fidelity.run_both(cloud)
    fidelity.OUT.parent.mkdir(parents=True, exist_ok=True)
    fidelity.OUT.write_text(fidelity.table(rows))
    assert len(rows) > 150, "the probes stopped early"
    problems = fidelity.judge(rows)
    assert not problems, "\n".join([*problems, f"(the whole table: {fidelity.OUT})"])
