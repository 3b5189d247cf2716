"""Scenario specs: every built-in runs in virtual time; the simulator is deterministic."""

from __future__ import annotations

import io
import json

import pytest

from nodefsm import SpecError
from nodefsm._cli import main
from nodefsm._scenario import builtin_scenario_names, load_scenario, load_scenario_text
from nodefsm._sim import SimTransport, simulate

REQUIRED = {
    "network-delays",
    "packet-loss",
    "dns-failure",
    "node-restart",
    "high-latency",
    "multiple-failures",
    "recovery",
    "flapping",
    "overload-storm",
    "monitor-network",
    "cluster-restart",
    "demo",
}


def test_builtin_scenarios_cover_the_recommendations() -> None:
    """The seed's five recommendations and the four extra stories are all there."""
    assert REQUIRED <= set(builtin_scenario_names())


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_every_scenario_meets_its_expectations_in_virtual_time(name: str) -> None:
    """Each built-in scenario runs on MockClock and meets every expectation."""
    result = simulate(load_scenario(name))
    assert result.report.ok, result.report.text()
    assert 0 == result.report.false_transitions
    assert result.report.probes > 0


def test_same_seed_gives_byte_identical_output() -> None:
    """simulate twice with the same seed: identical JSON output."""
    outs = []
    for _ in range(2):
        out = io.StringIO()
        assert 0 == main(["simulate", "demo", "--json", "--seed", "3"], out=out)
        outs.append(out.getvalue())
    assert outs[0] == outs[1]
    assert len(outs[0].splitlines()) > 10
    other = io.StringIO()
    main(["simulate", "packet-loss", "--json", "--seed", "4"], out=other)
    events = [json.loads(line) for line in other.getvalue().splitlines()]
    assert all(
        {"ts", "node", "machine", "trigger", "source", "dest"} <= set(e) for e in events
    )


def test_seed_policy_is_measurably_worse() -> None:
    """The Go design's policy misses the demo's expectations; nodefsm meets them."""
    scenario = load_scenario("demo")
    seed = simulate(scenario, policy="seed").report
    ours = simulate(scenario).report
    assert not seed.ok
    assert ours.ok
    restart = load_scenario("cluster-restart")
    assert simulate(restart, policy="seed").report.peak_reconnects_per_second > 3 * (
        simulate(restart).report.peak_reconnects_per_second
    )


def test_simulate_cli_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    """simulate exits 0 when expectations hold and 1 when one does not."""
    out = io.StringIO()
    assert 0 == main(["simulate", "node-restart"], out=out)
    assert "all expectations met" in out.getvalue()
    assert "t=" in out.getvalue()
    assert 1 == main(["simulate", "demo", "--policy", "seed", "-q"], out=io.StringIO())
    assert 2 == main(["simulate", "nope"], out=io.StringIO())
    assert "no such scenario file or built-in" in capsys.readouterr().err


def test_transport_timeline() -> None:
    """The simulated transport applies the latest fault; flaps alternate."""
    scenario = load_scenario_text(
        """
[scenario]
name = "t"
duration = 100.0
[cluster]
nodes = ["a"]
[[fault]]
label = "one"
at = 10.0
until = 50.0
nodes = ["a"]
kind = "hang"
[[fault]]
label = "two"
at = 20.0
until = 30.0
nodes = ["a"]
kind = "flap"
period = 2.0
"""
    )
    transport = SimTransport(scenario, 1, 0.0)
    assert transport.active("a", 5.0) is None
    active = transport.active("a", 15.0)
    assert active is not None
    assert "one" == active.label
    flap = transport.active("a", 21.0)
    assert flap is not None
    assert "two" == flap.label
    assert transport.active("a", 23.0) is None
    assert "one" == transport.active("a", 35.0).label  # type: ignore[union-attr]


BASE = """
[scenario]
name = "x"
duration = 60.0
[cluster]
nodes = ["a", "b"]
"""


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (
            "[[fault]]\nat = 5.0\nnodes = ['a']\nkind = 'meteor'\n",
            "kind 'meteor'; known: down",
        ),
        (
            "[[fault]]\nat = 99.0\nnodes = ['a']\nkind = 'down'\n",
            "at 99.0 must be seconds within",
        ),
        (
            "[[fault]]\nat = 5.0\nuntil = 1.0\nnodes = ['a']\nkind = 'down'\n",
            "until 1.0 must be seconds after",
        ),
        ("[[fault]]\nat = 5.0\nnodes = ['z']\nkind = 'down'\n", "unknown node 'z'"),
        (
            "[[fault]]\nat = 5.0\nnodes = ['a']\nkind = 'slow'\n",
            "a slow fault needs delay",
        ),
        (
            "[[fault]]\nat = 5.0\nnodes = ['a']\nkind = 'loss'\nloss = 2.0\n",
            "loss 2.0 must be a probability",
        ),
        (
            "[[fault]]\nat = 5.0\nnodes = ['a']\nkind = 'dns'\n",
            "cannot run on loopback; set realtime = false",
        ),
        (
            "[[fault]]\nat = 5.0\nnodes = ['a']\nkind = 'down'\ncolour = 1\n",
            "unknown key 'colour' in [[fault]]",
        ),
        (
            "[[expect]]\nnode = 'a'\nreaches = 'gone'\nwithin = 3.0\n",
            "reaches 'gone' is not a node status",
        ),
        ("[[expect]]\nnode = 'a'\nreaches = 'offline'\n", "reaches needs within"),
        (
            "[[expect]]\nnode = 'a'\nnever = 'failed'\nreaches = 'offline'\nwithin = 1.0\n",
            "needs exactly one of",
        ),
        ("[[expect]]\nnever = 'failed'\n", "never needs node"),
        (
            "[[expect]]\nnode = 'a'\nreaches = 'online'\nwithin = 1.0\nafter = 'nothing'\n",
            "after 'nothing' names no fault",
        ),
        (
            "[[expect]]\nnode = 'a'\nmax_transitions = 2\nwindow = [5, 1]\n",
            "window must be [start, end]",
        ),
        ("[[expect]]\nmax_reconnect_rate = -1\n", "max_reconnect_rate must be"),
        (
            "[[expect]]\nself_suspicion = 'yes'\n",
            "self_suspicion must be true or false",
        ),
        (
            "[[expect]]\nnode = 'a'\nreaches = 'online'\nwithin = 1.0\nfrom = 'middle'\n",
            'from must be "start" or "end"',
        ),
        ("[oops]\n", "unknown top-level key 'oops'"),
    ],
)
def test_invalid_scenarios(extra: str, fragment: str) -> None:
    """Broken scenarios give one `file:line: ...` line naming the problem."""
    with pytest.raises(SpecError) as info:
        load_scenario_text(BASE + extra, path="s.toml")
    assert any(fragment in p for p in info.value.problems), info.value.problems
    assert all(p.startswith("s.toml:") for p in info.value.problems)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            "[scenario]\nname = 'Bad Name'\nduration = 1.0\n[cluster]\nnodes = 2\n",
            "name 'Bad Name'",
        ),
        (
            "[scenario]\nname = 'x'\nduration = -1\n[cluster]\nnodes = 2\n",
            "duration -1 must be",
        ),
        (
            "[scenario]\nname = 'x'\nduration = 1.0\nseed = 'a'\n[cluster]\nnodes = 2\n",
            "seed 'a' must be an integer",
        ),
        (
            "[scenario]\nname = 'x'\nduration = 1.0\n[cluster]\nnodes = 0\n",
            "nodes must be a count",
        ),
        (
            "[scenario]\nname = 'x'\nduration = 1.0\n[cluster]\nnodes = ['a', 'a']\n",
            "node names must be distinct",
        ),
        (
            "[scenario]\nname = 'x'\nduration = 1.0\n[cluster]\nnodes = 2\nprofile = 'grpc'\n",
            "profile 'grpc'",
        ),
        (
            "[scenario]\nname = 'x'\nduration = 1.0\n[cluster]\nnodes = 2\nlatency = -1\n",
            "latency -1",
        ),
        (
            "[scenario]\nname = 'x'\nduration = 1.0\nrealtime = 'maybe'\n[cluster]\nnodes = 2\n",
            "realtime must be true or false",
        ),
        ("[scenario\n", "invalid TOML"),
    ],
)
def test_invalid_scenario_heads(text: str, fragment: str) -> None:
    """Head and cluster errors are reported with their line."""
    with pytest.raises(SpecError) as info:
        load_scenario_text(text, path="h.toml")
    assert any(fragment in p for p in info.value.problems), info.value.problems


def test_counted_nodes_and_wildcards() -> None:
    """nodes = N names node-1..node-N; "*" targets them all."""
    s = load_scenario_text(
        "[scenario]\nname = 'x'\nduration = 10.0\nrealtime = false\n[cluster]\nnodes = 3\n"
        "[[fault]]\nat = 1.0\nnodes = '*'\nkind = 'down'\n"
        "[[fault]]\nat = 2.0\nkind = 'monitor_network'\n"
    )
    assert ("node-1", "node-2", "node-3") == s.nodes
    assert s.faults[0].nodes == s.nodes
    assert s.faults[1].nodes == s.nodes
    assert "fault-1" == s.faults[0].label
