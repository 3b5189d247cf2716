"""The public strategies drive the real engine without breaking invariants."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodefsm import ClusterState, NodeStatus
from nodefsm._probe import ProbeResult
from nodefsm._scenario import Scenario
from nodefsm._sim import simulate
from nodefsm.strategies import probe_outcomes, scenarios


@given(st.lists(probe_outcomes(), max_size=60))
def test_any_probe_sequence_keeps_the_engine_consistent(
    results: list[ProbeResult],
) -> None:
    """Feeding arbitrary probe outcomes never raises and keeps counts consistent."""
    cs = ClusterState(rng=random.Random(0))
    cs.add_node("n:1")
    for i, r in enumerate(results):
        if r.ok:
            cs.record_success("n:1", r.latency, now=float(i), load=r.load)
        else:
            assert r.classification is not None
            cs.record_failure("n:1", r.classification, now=float(i))
    assert cs.status("n:1") in set(NodeStatus)
    assert 1 == sum(cs.summary().counts.values())


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(max_nodes=4, duration=60.0))
def test_any_scenario_simulates(scenario: Scenario) -> None:
    """Any generated scenario runs to the end and reports every fault."""
    result = simulate(scenario)
    assert len(scenario.faults) == len(result.report.faults)
    assert result.report.ok  # no expectations: vacuously met
    assert all(r.node in set(result.ids.values()) | {"cluster"} for r in result.records)
