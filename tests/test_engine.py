"""The engine facade over transitions, and edge coverage of every built-in spec."""

from __future__ import annotations

import itertools
import json

import attrs
import pytest

from nodefsm import (
    Category,
    CommunicationStats,
    Severity,
    TransitionNotAllowed,
    classify,
)
from nodefsm._classify import Classification
from nodefsm._config import DegradationLevel, LoadReport, NodeThresholds
from nodefsm._engine import Engine, NodeEvent, NodeStatus
from nodefsm._guards import GUARDS, GuardContext
from nodefsm._retry import RetryPolicy
from nodefsm._spec import builtin_spec_names, load_spec


def test_fire_returns_a_record() -> None:
    """Firing an allowed event returns a frozen record with guards and reason."""
    engine = Engine("node_status")
    engine.add("a:1")
    record = engine.fire("a:1", NodeEvent.PROBE_SUCCEEDED, now=12.5)
    assert record is not None
    assert ("starting", "online", False, 12.5) == (
        record.source,
        record.dest,
        record.internal,
        record.ts,
    )
    assert NodeStatus.ONLINE == record.dest
    assert record.changed
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        record.dest = "failed"  # type: ignore[misc]


def test_record_json_has_contract_keys() -> None:
    """to_json has every key the contract names."""
    engine = Engine("node_status")
    engine.add("a:1")
    ctx = GuardContext(classification=classify(PermissionError()))
    record = engine.fire("a:1", NodeEvent.PROBE_FAILED, now=1.0, ctx=ctx)
    assert record is not None
    data = json.loads(json.dumps(record.to_json()))
    keys = {
        "ts",
        "node",
        "machine",
        "trigger",
        "source",
        "dest",
        "category",
        "severity",
        "reason",
    }
    assert keys <= set(data)
    assert ("permission_denied", "persistent", "offline") == (
        data["category"],
        data["severity"],
        data["dest"],
    )
    assert {"is_critical": False, "is_persistent": True} == data["guards"]


def test_not_allowed_names_node_state_event_and_alternatives() -> None:
    """An event a state has no edge for raises TransitionNotAllowed, not MachineError."""
    engine = Engine("node_status")
    engine.add("a:1")
    with pytest.raises(TransitionNotAllowed) as info:
        engine.fire("a:1", NodeEvent.END_MAINTENANCE, now=0)
    err = info.value
    assert ("a:1", "starting", "end_maintenance") == (err.node, err.state, err.event)
    assert "probe_failed" in err.allowed
    assert "node 'a:1' is 'starting'" in str(err)


def test_models_share_one_machine() -> None:
    """Nodes are models of one machine: add, count, remove."""
    engine = Engine("node_status")
    for i in range(5):
        engine.add(f"n{i}")
    engine.fire("n0", NodeEvent.PROBE_SUCCEEDED, now=0)
    assert 5 == len(engine)
    assert {"starting": 4, "online": 1} == {
        k: v for k, v in engine.counts().items() if v
    }
    engine.remove("n0")
    engine.remove("n0")  # idempotent
    assert "n0" not in engine
    assert ("n1", "n2", "n3", "n4") == engine.nodes()
    with pytest.raises(KeyError, match="unknown node 'n0'"):
        engine.state("n0")
    with pytest.raises(ValueError, match="already present"):
        engine.add("n1")
    with pytest.raises(ValueError, match="unknown state"):
        engine.add("z", state="nowhere")
    assert "Engine('node_status', nodes=4)" == repr(engine)


def test_no_injected_state_setters() -> None:
    """auto_transitions is off: models have no to_<state>() shortcuts."""
    engine = Engine("node_status")
    engine.add("a")
    model = engine._models["a"]
    assert not hasattr(model, "to_failed")
    assert "<a: starting>" == repr(model)


def test_unguarded_miss_returns_none() -> None:
    """A custom spec whose opaque guards all fail returns None (no transition)."""
    from nodefsm._spec import load_spec_text

    spec = load_spec_text(
        "[machine]\nname='m'\ninitial='a'\n[states]\na='A'\nb='B'\n"
        "[[transition]]\ntrigger='go'\nsource='a'\ndest='b'\nconditions=['recovered']\n"
        "[[transition]]\ntrigger='back'\nsource='b'\ndest='a'\n"
    )
    engine = Engine(spec)
    engine.add("x")
    assert engine.fire("x", "go", now=0) is None
    assert "a" == engine.state("x")
    assert ("go",) == engine.allowed("x")


# ---------------------------------------------------------------------------
# Edge coverage: every edge of every built-in spec fires for some context.


def _stats(failures: int, successes: int, slow: bool) -> CommunicationStats:
    s = CommunicationStats()
    for i in range(8):
        s = s.record_success(0.1, now=i)
    if slow:
        s = s.record_success(2.0, now=9)
    for i in range(successes):
        s = s.record_success(2.0 if slow else 0.1, now=10 + i)
    for i in range(failures):
        s = s.record_failure(classify(TimeoutError()), now=20 + i)
    return s


def _contexts() -> list[GuardContext]:
    classifications: list[Classification | None] = [None]
    for sev, cat in itertools.product(
        Severity, [Category.TIMEOUT, Category.RESOURCE_BUSY]
    ):
        classifications.append(Classification(cat, sev, sev is Severity.TEMPORARY))
    stats = [
        _stats(f, s, slow)
        for f, s, slow in [
            (0, 0, False),
            (1, 0, False),
            (3, 0, False),
            (5, 0, False),
            (0, 1, False),
            (0, 2, False),
            (0, 2, True),
            (0, 1, True),
        ]
    ]
    loads = [None, LoadReport(cpu_percent=95.0)]
    out = [
        GuardContext(classification=c, stats=s, load=ld)
        for c, s, ld in itertools.product(classifications, stats, loads)
    ]
    policy = RetryPolicy(retries=2)
    for c, attempt, give_up in itertools.product(
        classifications, [0, 3], [False, True]
    ):
        out.append(
            GuardContext(
                classification=c,
                attempt=attempt,
                policy=policy,
                give_up_on_persistent=give_up,
            )
        )
    out += [GuardContext(target=lvl) for lvl in DegradationLevel]
    return out


@pytest.mark.parametrize("name", builtin_spec_names())
def test_every_edge_is_exercised(name: str) -> None:
    """For each (edge, source) some context fires it: 100 % edge coverage, no dead edge."""
    spec = load_spec(name)
    engine = Engine(spec)
    contexts = _contexts()
    counter = itertools.count()
    for state in spec.state_names:
        for trigger in spec.allowed(state):
            for ctx in contexts:
                node = f"n{next(counter)}"
                engine.add(node, state=state)
                engine.fire(node, trigger, now=0.0, ctx=ctx)
                engine.remove(node)
    all_edges = {(t.line, s) for t in spec.transitions for s in t.sources}
    missing = sorted(all_edges - set(engine.edge_hits))
    assert [] == missing
    assert 1.0 == len(set(engine.edge_hits) & all_edges) / len(all_edges)


def test_every_guard_is_used_by_some_builtin_spec() -> None:
    """No guard in the registry is dead weight."""
    used = {
        g
        for n in builtin_spec_names()
        for t in load_spec(n).transitions
        for g in t.guards
    }
    assert set(GUARDS) == used


def test_thresholds_are_configuration() -> None:
    """Custom thresholds change when the node degrades."""
    engine = Engine("node_status")
    engine.add("a", state="online")
    ctx = GuardContext(
        classification=classify(TimeoutError()),
        stats=_stats(1, 0, False),
        thresholds=NodeThresholds(degrade_after=1, offline_after=2),
    )
    record = engine.fire("a", NodeEvent.PROBE_FAILED, now=0, ctx=ctx)
    assert record is not None
    assert "degraded" == record.dest
