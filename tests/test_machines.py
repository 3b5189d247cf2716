"""Stateful property tests: one RuleBasedStateMachine per machine spec."""

from __future__ import annotations

import random

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from nodefsm import Classification, RetryPolicy, Severity, TransitionNotAllowed
from nodefsm._cluster import ClusterState
from nodefsm._config import DegradationLevel, LoadReport, NodeThresholds
from nodefsm._engine import Engine, NodeEvent, NodeStatus, ReconnectState
from nodefsm._guards import GuardContext
from nodefsm._spec import load_spec
from nodefsm.strategies import classifications

NODE = "n:1"
STATUS_SPEC = load_spec("node_status")


class NodeStatusMachine(RuleBasedStateMachine):
    """Random probe outcomes, load reports and operator events on one node."""

    def __init__(self) -> None:
        super().__init__()
        self.thresholds = NodeThresholds(
            degrade_after=2, offline_after=4, recover_after=2
        )
        self.cluster = ClusterState(
            thresholds=self.thresholds,
            reconnect_policy=RetryPolicy(retries=3),
            rng=random.Random(0),
            include_internal=True,
        )
        self.cluster.add_node(NODE)
        self.now = 0.0
        self.last: tuple[str, Classification | None, str] | None = None

    def _observe(self, kind: str, c: Classification | None, records: list) -> None:  # type: ignore[type-arg]
        self.now += 1.0
        self.last = (kind, c, self.cluster.status(NODE).value)
        for r in records:
            assert r.source in STATUS_SPEC.state_names or r.machine != "node_status"
            if r.machine == "node_status" and r.changed:
                self._check_edge(kind, c, r.source, r.dest)

    def _check_edge(
        self, kind: str, c: Classification | None, source: str, dest: str
    ) -> None:
        stats = self.cluster.stats(NODE)
        if dest == "failed":
            assert kind == "operator" or (
                c is not None and c.severity is Severity.CRITICAL
            )
        if dest == "offline" and source != "stopping":
            assert kind == "failure"
            assert c is not None
            assert (
                c.severity is not Severity.TEMPORARY
                or stats.consecutive_failures >= self.thresholds.offline_after
            )
        if dest == "degraded" and kind == "failure":
            assert stats.consecutive_failures >= self.thresholds.degrade_after
        if dest == "online" and source in ("degraded", "offline"):
            assert stats.consecutive_successes >= self.thresholds.recover_after

    @rule(latency=st.floats(0.001, 5.0), overloaded=st.booleans())
    def success(self, latency: float, overloaded: bool) -> None:
        load = LoadReport(cpu_percent=95.0 if overloaded else 10.0, active_requests=1)
        records = self.cluster.record_success(NODE, latency, now=self.now, load=load)
        self._observe("success", None, records)

    @rule(c=classifications())
    def failure(self, c: Classification) -> None:
        records = self.cluster.record_failure(NODE, c, now=self.now)
        self._observe("failure", c, records)

    @rule()
    def reconnect_timer(self) -> None:
        for node in self.cluster.due_reconnects(now=self.now + 10_000):
            self.cluster.begin_reconnect(node, now=self.now)
        self.now += 1.0

    @rule(event=st.sampled_from(list(NodeEvent)))
    def operator(self, event: NodeEvent) -> None:
        if event in (NodeEvent.PROBE_FAILED, NodeEvent.PROBE_SUCCEEDED):
            return
        before = self.cluster.status(NODE)
        try:
            records = self.cluster.operator(NODE, event, now=self.now)
        except TransitionNotAllowed:
            assert event.value not in STATUS_SPEC.allowed(before.value)
            return
        self._observe("operator", None, records)

    @invariant()
    def status_is_a_spec_state(self) -> None:
        assert self.cluster.status(NODE).value in STATUS_SPEC.state_names

    @invariant()
    def offline_means_reconnecting(self) -> None:
        """An offline node is never left without a reconnection in progress or given up."""
        if self.cluster.status(NODE) is NodeStatus.OFFLINE and self.last is not None:
            assert self.cluster.reconnection(NODE) is not ReconnectState.IDLE or (
                self.last[0] == "success"
            )

    @invariant()
    def summary_is_consistent(self) -> None:
        summary = self.cluster.summary()
        assert 1 == summary.node_count
        assert 1 == sum(summary.counts.values())


class ReconnectionMachine(RuleBasedStateMachine):
    """The reconnection machine alone, with generated failures."""

    def __init__(self) -> None:
        super().__init__()
        self.engine = Engine("reconnection")
        self.engine.add(NODE)
        self.policy = RetryPolicy(retries=3)
        self.give_up_on_persistent = False
        self.attempt = 0
        self.gave_up_for: tuple[Classification, int, bool] | None = None

    @property
    def state(self) -> str:
        return self.engine.state(NODE)

    def _fire(self, trigger: str, c: Classification | None = None) -> None:
        ctx = GuardContext(
            classification=c,
            attempt=self.attempt,
            policy=self.policy,
            give_up_on_persistent=self.give_up_on_persistent,
        )
        record = self.engine.fire(NODE, trigger, now=0.0, ctx=ctx)
        assert record is not None
        if record.dest == "given_up" and record.changed:
            assert c is not None
            self.gave_up_for = (c, self.attempt, self.give_up_on_persistent)

    @precondition(lambda self: self.state == "idle")
    @rule()
    def node_offline(self) -> None:
        self.attempt = 0
        self._fire("node_offline")

    @precondition(lambda self: self.state == "waiting")
    @rule()
    def timer(self) -> None:
        self._fire("timer_fired")

    @precondition(lambda self: self.state == "connecting")
    @rule(c=classifications())
    def attempt_failed(self, c: Classification) -> None:
        if c.severity is Severity.TEMPORARY or c.severity is Severity.UNKNOWN:
            self.attempt += 1
        self._fire("attempt_failed", c)

    @precondition(lambda self: self.state == "connecting")
    @rule()
    def attempt_succeeded(self) -> None:
        self._fire("attempt_succeeded")

    @rule(flag=st.booleans())
    def configure(self, flag: bool) -> None:
        self.give_up_on_persistent = flag

    @precondition(lambda self: self.state != "idle")
    @rule(trigger=st.sampled_from(["node_online", "reset"]))
    def external(self, trigger: str) -> None:
        self._fire(trigger)

    @invariant()
    def gives_up_only_for_a_reason(self) -> None:
        if self.state == "given_up" and self.gave_up_for is not None:
            c, attempt, give_up_on_persistent = self.gave_up_for
            assert (
                c.severity is Severity.CRITICAL
                or (c.severity is Severity.PERSISTENT and give_up_on_persistent)
                or attempt >= self.policy.attempts
            )

    @invariant()
    def never_more_attempts_than_the_policy(self) -> None:
        assert self.attempt <= self.policy.attempts


class DegradationMachine(RuleBasedStateMachine):
    """The degradation machine steps one level at a time to any target."""

    def __init__(self) -> None:
        super().__init__()
        self.engine = Engine("degradation")
        self.engine.add("cluster")

    @rule(level=st.sampled_from(list(DegradationLevel)))
    def evaluate(self, level: DegradationLevel) -> None:
        target = level
        steps = 0
        while True:
            before = DegradationLevel[self.engine.state("cluster").upper()]
            record = self.engine.fire(
                "cluster", "evaluate", now=0, ctx=GuardContext(target=target)
            )
            assert record is not None
            after = DegradationLevel[record.dest.upper()]
            if record.internal:
                break
            assert 1 == abs(after - before)
            steps += 1
        assert target.label == self.engine.state("cluster")
        assert steps <= 4


TestNodeStatus = NodeStatusMachine.TestCase
TestNodeStatus.settings = settings(
    max_examples=80, stateful_step_count=30, deadline=None
)
TestReconnection = ReconnectionMachine.TestCase
TestReconnection.settings = settings(
    max_examples=80, stateful_step_count=30, deadline=None
)
TestDegradation = DegradationMachine.TestCase
TestDegradation.settings = settings(max_examples=50, deadline=None)
