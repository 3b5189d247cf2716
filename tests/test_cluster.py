"""ClusterState: the three machines wired together, scripted sequences."""

from __future__ import annotations

import random

import httpx
import pytest

from nodefsm import ConfigurationError, RetryPolicy, TransitionNotAllowed, classify
from nodefsm._cluster import ClusterState, SuspicionPolicy
from nodefsm._config import (
    DegradationLevel,
    DegradationMode,
    DegradationPolicy,
    LoadReport,
)
from nodefsm._engine import NodeEvent, NodeStatus, ReconnectState

TIMEOUT = classify(TimeoutError())
REFUSED = classify(ConnectionRefusedError())
CRITICAL = classify(__import__("ssl").SSLCertVerificationError(1, "verify"))
BUSY = classify(httpx.Response(503, headers={"Retry-After": "2"}))


def make(*nodes: str, **kwargs: object) -> ClusterState:
    kwargs.setdefault("rng", random.Random(1))
    cs = ClusterState(**kwargs)  # type: ignore[arg-type]
    for n in nodes:
        cs.add_node(n)
    return cs


def path(records: list, machine: str = "node_status") -> list[str]:  # type: ignore[type-arg]
    return [r.dest for r in records if r.machine == machine and r.changed]


def test_first_success_brings_a_node_online() -> None:
    """starting -> online on the first success; the cluster stays at none."""
    cs = make("a")
    assert ["online"] == path(cs.record_success("a", 0.01, now=0))
    assert NodeStatus.ONLINE == cs.status("a")
    assert DegradationLevel.NONE == cs.level


def test_failures_degrade_then_offline_then_reconnect() -> None:
    """3 temporary failures -> degraded, 5 -> offline and reconnection waiting."""
    cs = make("a", "b", "c", "d")
    for n in "abcd":
        cs.record_success(n, 0.01, now=0)
    seen = []
    for i in range(5):
        seen += cs.record_failure("a", REFUSED, now=1 + i)
    assert ["degraded", "offline"] == path(seen)
    assert ["waiting"] == path(seen, "reconnection")
    assert ReconnectState.WAITING == cs.reconnection("a")
    snap = cs.snapshot("a")
    assert snap.next_retry_at is not None
    assert 5.0 < snap.next_retry_at <= 5.0 + 0.1 * 1.15
    assert DegradationLevel.SEVERE == snap.level
    assert "moderate" == cs.degradation_machine.state("cluster")


def test_reconnection_attempt_counts_and_gives_up() -> None:
    """Each failed attempt increments; after retries + 1 the machine gives up."""
    cs = make("a", reconnect_policy=RetryPolicy(retries=2))
    cs.record_success("a", 0.01, now=0)
    now = 1.0
    for _ in range(5):
        cs.record_failure("a", REFUSED, now=now)
        now += 1
    delays = []
    for _ in range(3):
        due = cs.next_reconnect_at()
        assert due is not None
        assert [] == cs.due_reconnects(now=due - 0.001)
        assert ["a"] == cs.due_reconnects(now=due)
        cs.begin_reconnect("a", now=due)
        assert ReconnectState.CONNECTING == cs.reconnection("a")
        records = cs.record_failure("a", REFUSED, now=due)
        delays.append(cs.snapshot("a").next_retry_at)
    assert ["given_up"] == path(records, "reconnection")
    assert 3 == cs.snapshot("a").attempt
    assert cs.next_reconnect_at() is None


def test_reconnect_success_needs_recover_after() -> None:
    """A successful attempt ends reconnection; the second success brings it online."""
    cs = make("a")
    cs.record_success("a", 0.01, now=0)
    cs.record_failure("a", PERMISSION := classify(PermissionError()), now=1)
    assert NodeStatus.OFFLINE == cs.status("a")
    due = cs.next_reconnect_at()
    assert due is not None
    assert due - 1 >= 30 / 1.15  # persistent: polled at the capped delay
    cs.begin_reconnect("a", now=due)
    first = cs.record_success("a", 0.01, now=due)
    assert ["idle"] == path(first, "reconnection")
    assert NodeStatus.OFFLINE == cs.status("a")
    second = cs.record_success("a", 0.01, now=due + 1)
    assert ["online"] == path(second)
    assert PERMISSION.category == cs.snapshot("a").last_classification.category  # type: ignore[union-attr]


def test_failure_after_partial_recovery_rearms_reconnection() -> None:
    """If the node fails again while offline and idle, reconnection restarts."""
    cs = make("a")
    cs.record_failure("a", classify(PermissionError()), now=0)
    cs.begin_reconnect("a", now=100)
    cs.record_success("a", 0.01, now=100)
    assert ReconnectState.IDLE == cs.reconnection("a")
    cs.record_failure("a", REFUSED, now=101)
    assert ReconnectState.WAITING == cs.reconnection("a")


def test_critical_failure_fails_the_node_and_stops_reconnection() -> None:
    """An untrusted certificate: failed; only reset leaves it."""
    cs = make("a")
    cs.record_success("a", 0.01, now=0)
    for i in range(5):
        cs.record_failure("a", REFUSED, now=1 + i)
    cs.begin_reconnect("a", now=10)
    records = cs.record_failure("a", CRITICAL, now=10)
    assert ["failed"] == path(records)
    assert ReconnectState.GIVEN_UP == cs.reconnection("a")
    assert DegradationLevel.CRITICAL == cs.level
    assert [] == path(cs.record_success("a", 0.01, now=11))
    reset = cs.operator("a", NodeEvent.RESET, now=12, reason="cert rotated")
    assert ["starting"] == path(reset)
    assert ["idle"] == path(reset, "reconnection")
    assert "cert rotated" == reset[0].reason


def test_critical_while_waiting_resets_reconnection() -> None:
    """A node that goes failed while waiting has its reconnection stopped."""
    cs = make("a")
    cs.record_failure("a", classify(PermissionError()), now=0)
    assert ReconnectState.WAITING == cs.reconnection("a")
    records = cs.record_failure("a", CRITICAL, now=1)
    assert ["failed"] == path(records)
    assert ReconnectState.IDLE == cs.reconnection("a")
    assert cs.snapshot("a").next_retry_at is None


def test_busy_by_load_and_by_503() -> None:
    """Overloaded load reports and 503s make a node busy; normal load brings it back."""
    cs = make("a")
    cs.record_success("a", 0.01, now=0)
    hot = LoadReport(cpu_percent=95.0, active_requests=3, queued_requests=2)
    assert ["busy"] == path(cs.record_success("a", 0.01, now=1, load=hot))
    cool = LoadReport(cpu_percent=5, active_requests=3)
    assert ["online"] == path(cs.record_success("a", 0.01, now=2, load=cool))
    assert ["busy"] == path(cs.record_failure("a", BUSY, now=3))
    assert [] == path(cs.record_failure("a", BUSY, now=4))
    summary = cs.summary().to_dict()
    assert 1 == summary["busy_nodes"]
    assert 3 == summary["total_active_requests"]


def test_slow_node_degrades_and_recovers() -> None:
    """A sustained 10x latency jump degrades the node; fast answers bring it back."""
    cs = make("a")
    for i in range(8):
        cs.record_success("a", 0.01, now=i)
    assert [] == path(cs.record_success("a", 0.1, now=8))  # one spike is not enough
    assert ["degraded"] == path(cs.record_success("a", 0.1, now=9))
    assert [] == path(cs.record_success("a", 0.01, now=10))
    assert ["online"] == path(cs.record_success("a", 0.01, now=11))


def test_local_failures_never_count() -> None:
    """A pool timeout on our side changes nothing about the node."""
    cs = make("a")
    cs.record_success("a", 0.01, now=0)
    for i in range(10):
        assert [] == cs.record_failure("a", classify(httpx.PoolTimeout("p")), now=i)
    assert NodeStatus.ONLINE == cs.status("a")
    assert 10 == cs.stats("a").local_failures


def test_self_suspicion_holds_verdicts() -> None:
    """When most nodes fail at the network level at once, verdicts are held."""
    cs = make("a", "b", "c", "d")
    for n in "abcd":
        cs.record_success(n, 0.01, now=0)
    records = []
    now = 1.0
    for _ in range(10):
        for n in "abcd":
            records += cs.record_failure(n, TIMEOUT, now=now)
            now += 0.1
    assert cs.self_suspected
    notices = [r for r in records if r.trigger == "self_suspicion"]
    assert 1 == len(notices)
    assert "monitor's own network" in notices[0].reason
    assert all(cs.status(n) in (NodeStatus.ONLINE, NodeStatus.DEGRADED) for n in "abcd")
    assert not any(cs.status(n) is NodeStatus.OFFLINE for n in "abcd")
    assert cs.summary().to_dict()["self_suspected"]
    cleared = []
    for n in "abcd":
        cleared += cs.record_success(n, 0.01, now=now)
    assert ["self_suspicion_cleared"] == [
        r.trigger for r in cleared if "suspicion" in r.trigger
    ]
    assert not cs.self_suspected


def test_refusals_are_not_suspicious() -> None:
    """Refused connections prove the network works: nodes go offline normally."""
    cs = make("a", "b", "c")
    for n in "abc":
        cs.record_success(n, 0.01, now=0)
    for i in range(5):
        for n in "abc":
            cs.record_failure(n, REFUSED, now=1 + i)
    assert not cs.self_suspected
    assert all(cs.status(n) is NodeStatus.OFFLINE for n in "abc")


def test_routes_honour_status_tolerance_and_slow_start() -> None:
    """Online first (ramped after recovery), degraded if tolerated, busy as last resort."""
    cs = make("a", "b", "c", slow_start=10.0)
    for n in "abc":
        cs.record_success(n, 0.01, now=0)
    routes = {r.node: r.weight for r in cs.routes(now=5)}
    assert {"a": 0.5, "b": 0.5, "c": 0.5} == routes
    for i in range(3):
        cs.record_failure("c", TIMEOUT, now=6 + i)
    assert NodeStatus.DEGRADED == cs.status("c")
    routes = {r.node: r.weight for r in cs.routes(now=20)}
    assert 1.0 == routes["a"]
    assert "c" in routes  # adaptive, cluster minor: a temporary error is tolerated
    assert cs.tolerates("c", TIMEOUT)
    strict = make("x", degradation=DegradationPolicy(mode=DegradationMode.STRICT))
    strict.record_success("x", 0.01, now=0)
    for i in range(3):
        strict.record_failure("x", TIMEOUT, now=1 + i)
    assert [] == strict.routes(now=10)
    hot = make("h")
    hot.record_success("h", 0.01, now=0)
    hot.record_failure("h", BUSY, now=1)
    assert ["h"] == [r.node for r in hot.routes(now=2)]


def test_remove_drops_everything() -> None:
    """Removing a node drops its state from every machine and re-evaluates."""
    cs = make("a", "b")
    cs.record_failure("a", CRITICAL, now=0)
    assert DegradationLevel.CRITICAL == cs.level
    records = cs.remove_node("a", now=1)
    assert "a" not in cs
    assert "a" not in cs.status_machine
    assert "a" not in cs.reconnect_machine
    assert DegradationLevel.NONE == cs.level
    assert "none" == records[-1].dest
    assert [] == cs.remove_node("a", now=2)
    assert ("b",) == cs.nodes()


def test_membership_errors() -> None:
    """Duplicate and reserved node ids are configuration errors."""
    cs = make("a")
    with pytest.raises(ConfigurationError, match="already monitored"):
        cs.add_node("a")
    with pytest.raises(ConfigurationError, match="reserved"):
        cs.add_node("cluster")
    with pytest.raises(TransitionNotAllowed):
        cs.operator("a", NodeEvent.END_MAINTENANCE, now=0)
    assert "ClusterState(nodes=1, level='none')" == repr(cs)


def test_maintenance_nodes_do_not_count() -> None:
    """A failed node in maintenance does not degrade the cluster."""
    cs = make("a", "b")
    cs.record_success("a", 0.01, now=0)
    cs.operator("a", NodeEvent.START_MAINTENANCE, now=1)
    for i in range(6):
        cs.record_failure("a", TIMEOUT, now=2 + i)
    assert NodeStatus.MAINTENANCE == cs.status("a")
    assert DegradationLevel.NONE == cs.level


def test_suspicion_policy_validation() -> None:
    """Nonsense suspicion settings are rejected."""
    with pytest.raises(ConfigurationError, match="min_nodes"):
        SuspicionPolicy(min_nodes=1)


def test_summary_keys() -> None:
    """The summary has the seed's keys plus degraded and failed counts."""
    cs = make("a")
    cs.record_success("a", 0.02, now=0, load=LoadReport(cpu_percent=1, memory_mb=100))
    d = cs.summary().to_dict()
    for key in [
        "node_count",
        "online_nodes",
        "offline_nodes",
        "busy_nodes",
        "degraded_nodes",
        "total_active_requests",
        "total_queued_requests",
        "average_latency_ms",
        "nodes",
    ]:
        assert key in d
    assert pytest.approx(20.0) == d["average_latency_ms"]
    node = d["nodes"][0]
    for key in [
        "id",
        "status",
        "cpu_usage",
        "memory_usage_mb",
        "active_requests",
        "queued_requests",
    ]:
        assert key in node
