"""Real-time runs on loopback through the proxy agree with the simulation.

These are the few real-time tests: scenarios are compressed with `scaled`
so each takes 18-30 s. Tolerance: every expectation holds in both runs, and
each fault's detection time differs by at most max(1 s, 50 %).
"""

from __future__ import annotations

import io
import json

import pytest
import trio

from nodefsm import ConfigurationError
from nodefsm._cli import main
from nodefsm._demo import run_demo, scaled
from nodefsm._run import Output
from nodefsm._scenario import load_scenario
from nodefsm._sim import simulate


@pytest.mark.parametrize(("name", "factor"), [("demo", 0.5), ("node-restart", 0.2)])
def test_realtime_agrees_with_simulation(name: str, factor: float) -> None:
    """The same scenario on loopback and in virtual time: same verdicts, close timings."""
    scenario = scaled(load_scenario(name), factor)
    out = io.StringIO()
    real = trio.run(
        lambda: run_demo(scenario, output=Output(out, json_mode=False, live=False))
    )
    sim = simulate(scenario).report
    assert real.ok, real.text()
    assert sim.ok, sim.text()
    for r, s in zip(real.faults, sim.faults, strict=True):
        assert r.detected_after is not None
        assert s.detected_after is not None
        assert abs(r.detected_after - s.detected_after) <= max(
            1.0, 0.5 * s.detected_after
        ), (r, s)
    assert "nodes: " in out.getvalue()


def test_demo_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    """`nodefsm demo --json` prints contract events on stdout and the report on stderr."""
    out = io.StringIO()
    assert 0 == main(
        ["demo", "--scenario", "overload-storm", "--scale", "0.08", "--json"], out=out
    )
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert any(e["dest"] == "busy" for e in events)
    assert "scenario overload-storm" in capsys.readouterr().err


def test_simulation_only_scenarios_are_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A DNS or monitor-network scenario cannot run on loopback: exit 2, one line."""
    assert 2 == main(["demo", "--scenario", "dns-failure"], out=io.StringIO())
    assert "simulation-only" in capsys.readouterr().err
    with pytest.raises(ConfigurationError):
        trio.run(
            lambda: run_demo(
                load_scenario("monitor-network"),
                output=Output(io.StringIO(), json_mode=True, live=False),
            )
        )
