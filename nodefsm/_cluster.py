"""The cluster state engine: the three machines, stats and policies, wired.

``ClusterState`` is synchronous and pure in the sense that matters: it does
no I/O, never reads a clock (every call takes ``now``) and draws randomness
only from the ``random.Random`` it was given. The trio runtime feeds it probe
outcomes; an embedding program can feed it its own outcomes; the simulator
feeds it a virtual transport. One explainable engine for active and passive
health.

What it fixes from the Go design: one source of truth per node (no second
probing loop, no discovery overwriting the status), reconnection counts its
attempts and gives up, degradation is computed from every node and consulted,
and every map entry of a removed node goes with it.
"""

from __future__ import annotations

import random
from typing import Any

import attrs

from ._classify import Category, Classification, Origin, Severity
from ._config import (
    DegradationLevel,
    DegradationMode,
    DegradationPolicy,
    LoadReport,
    NodeThresholds,
    cluster_level_from_counts,
    latency_ratio,
    node_level,
    should_tolerate,
)
from ._engine import (
    DegradationEvent,
    Engine,
    NodeEvent,
    NodeStatus,
    ReconnectEvent,
    ReconnectState,
    TransitionRecord,
)
from ._guards import GuardContext
from ._retry import RetryPolicy
from ._stats import CommunicationStats
from .exceptions import ConfigurationError

__all__ = [
    "CLUSTER",
    "ClusterState",
    "ClusterSummary",
    "NodeSnapshot",
    "Route",
    "SuspicionPolicy",
]

#: The node id of the degradation machine's single model.
CLUSTER = "cluster"

#: Failures that say "the path is broken", not "the node said no". A refusal
#: is an answer from the remote host, so it proves our network works.
NETWORK_LEVEL = frozenset(
    {
        Category.TIMEOUT,
        Category.NETWORK_TEMPORARY,
        Category.NETWORK_SEND,
        Category.NETWORK_RECEIVE,
        Category.NAME_RESOLUTION,
    }
)


_STATUS = {s.value: s for s in NodeStatus}
_SERVING = frozenset({NodeStatus.ONLINE, NodeStatus.BUSY, NodeStatus.DEGRADED})
_UNTRUSTED = frozenset({NodeStatus.DEGRADED, NodeStatus.OFFLINE})


@attrs.frozen(kw_only=True)
class SuspicionPolicy:
    """When the monitor suspects its own network (Lifeguard's lesson).

    Args:
        min_nodes: suspicion needs at least this many nodes with recent results.
        fraction: ... and at least this share of them failing at the network level.
        window: results older than this (seconds) do not count.
    """

    min_nodes: int = 3
    fraction: float = 0.75
    window: float = 30.0

    def __attrs_post_init__(self) -> None:
        if self.min_nodes < 2 or not (0.5 < self.fraction <= 1.0) or self.window <= 0:
            raise ConfigurationError(
                f"SuspicionPolicy: min_nodes={self.min_nodes} must be >= 2, fraction="
                f"{self.fraction} within (0.5, 1], window={self.window} > 0"
            )


@attrs.define
class _Node:
    node: str
    stats: CommunicationStats = attrs.field(factory=CommunicationStats)
    load: LoadReport | None = None
    attempt: int = 0
    next_retry_at: float | None = None
    last_delay: float | None = None
    level: DegradationLevel = DegradationLevel.NONE
    last_result_at: float | None = None
    last_network_failure: bool = False
    online_since: float | None = None
    held: int = 0
    rng: random.Random = attrs.field(factory=random.Random, repr=False)
    losses: list[float] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class NodeSnapshot:
    """One node, now. A frozen value: safe to keep and compare."""

    node: str
    status: NodeStatus
    reconnection: ReconnectState
    level: DegradationLevel
    stats: CommunicationStats
    load: LoadReport | None
    attempt: int
    next_retry_at: float | None
    online_since: float | None

    @property
    def last_classification(self) -> Classification | None:
        """The last node failure's classification, if any."""
        return self.stats.last_classification

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        c = self.last_classification
        return {
            "id": self.node,
            "status": self.status.value,
            "reconnection": self.reconnection.value,
            "level": self.level.label,
            "attempt": self.attempt,
            "next_retry_at": self.next_retry_at,
            "last_category": c.category.value if c is not None else None,
            "last_severity": c.severity.value if c is not None else None,
            "cpu_usage": self.load.cpu_percent if self.load else None,
            "memory_usage_mb": self.load.memory_mb if self.load else None,
            "active_requests": self.load.active_requests if self.load else None,
            "queued_requests": self.load.queued_requests if self.load else None,
            "stats": self.stats.to_dict(),
        }


@attrs.frozen(kw_only=True)
class ClusterSummary:
    """The cluster at a glance: the seed's summary keys plus what it lacked."""

    node_count: int
    counts: dict[str, int]
    level: DegradationLevel
    mode: DegradationMode
    self_suspected: bool
    total_active_requests: int
    total_queued_requests: int
    average_latency_ms: float | None
    nodes: tuple[NodeSnapshot, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping with the seed's keys (and a degraded count)."""
        c = self.counts
        return {
            "node_count": self.node_count,
            "online_nodes": c.get("online", 0),
            "offline_nodes": c.get("offline", 0),
            "busy_nodes": c.get("busy", 0),
            "degraded_nodes": c.get("degraded", 0),
            "failed_nodes": c.get("failed", 0),
            "counts": dict(c),
            "degradation_level": self.level.label,
            "degradation_mode": self.mode.value,
            "self_suspected": self.self_suspected,
            "total_active_requests": self.total_active_requests,
            "total_queued_requests": self.total_queued_requests,
            "average_latency_ms": self.average_latency_ms,
            "nodes": [n.to_dict() for n in self.nodes],
        }


@attrs.frozen
class Route:
    """A node a request may use now, with its weight in ``(0, 1]``."""

    node: str
    weight: float
    status: NodeStatus


class ClusterState:
    """The node status, reconnection and degradation machines for one cluster.

    Args:
        thresholds: node status thresholds (the seed's defaults).
        reconnect_policy: backoff for reconnection (the seed's defaults).
        degradation: mode and share threshold (adaptive, 30 %).
        suspicion: when to suspect the monitor's own network.
        rng: randomness for backoff jitter (seed it for reproducible runs).
        give_up_on_persistent: reconnection gives up on persistent errors
            instead of polling at the capped delay.
        slow_start: seconds over which a recovered node's routing weight
            ramps from 0.1 to 1.
        include_internal: also return records of internal transitions.
    """

    def __init__(
        self,
        *,
        thresholds: NodeThresholds | None = None,
        reconnect_policy: RetryPolicy | None = None,
        degradation: DegradationPolicy | None = None,
        suspicion: SuspicionPolicy | None = None,
        rng: random.Random | None = None,
        give_up_on_persistent: bool = False,
        slow_start: float = 10.0,
        include_internal: bool = False,
    ) -> None:
        self.thresholds = thresholds or NodeThresholds()
        self.reconnect_policy = reconnect_policy or RetryPolicy()
        self.degradation = degradation or DegradationPolicy()
        self.suspicion = suspicion or SuspicionPolicy()
        self.rng = rng or random.Random()
        self.give_up_on_persistent = give_up_on_persistent
        self.slow_start = slow_start
        self.include_internal = include_internal
        self.status_machine = Engine("node_status")
        self.reconnect_machine = Engine("reconnection")
        self.degradation_machine = Engine("degradation")
        self.degradation_machine.add(CLUSTER)
        self._nodes: dict[str, _Node] = {}
        self.self_suspected = False
        # Kept incrementally so one outcome costs O(1), not O(nodes):
        self._counted: dict[str, DegradationLevel] = {}  # nodes that count, by level
        self._level_counts: dict[DegradationLevel, int] = dict.fromkeys(
            DegradationLevel, 0
        )
        self._net_failing = 0  # nodes whose last outcome was a network-level failure

    def __repr__(self) -> str:
        return f"ClusterState(nodes={len(self._nodes)}, level={self.level.label!r})"

    # -- membership ---------------------------------------------------------

    def add_node(self, node: str) -> None:
        """Add a node; it starts in ``starting`` and must pass probes."""
        if node == CLUSTER:
            raise ConfigurationError(f"node id {CLUSTER!r} is reserved for the cluster")
        if node in self._nodes:
            raise ConfigurationError(f"node {node!r} is already monitored")
        # Each node draws its backoff jitter from its own generator, seeded
        # from the cluster's in add order: reproducible whatever the order
        # in which nodes' outcomes arrive.
        self._nodes[node] = _Node(node, rng=random.Random(self.rng.getrandbits(64)))
        self.status_machine.add(node)
        self.reconnect_machine.add(node)
        self._count(node, DegradationLevel.NONE)

    def remove_node(self, node: str, *, now: float) -> list[TransitionRecord]:
        """Remove a node and every piece of its state; re-evaluate the cluster."""
        gone = self._nodes.pop(node, None)
        if gone is None:
            return []
        self._count(node, None)
        self._net_failing -= gone.last_network_failure
        self.status_machine.remove(node)
        self.reconnect_machine.remove(node)
        return self._evaluate(now)

    def __contains__(self, node: object) -> bool:
        return node in self._nodes

    def nodes(self) -> tuple[str, ...]:
        """Node ids in insertion order."""
        return tuple(self._nodes)

    # -- reading -------------------------------------------------------------

    def status(self, node: str) -> NodeStatus:
        """The node's status."""
        return _STATUS[self.status_machine.state(node)]

    def reconnection(self, node: str) -> ReconnectState:
        """The node's reconnection state."""
        return ReconnectState(self.reconnect_machine.state(node))

    @property
    def level(self) -> DegradationLevel:
        """The degradation machine's current level."""
        return DegradationLevel[self.degradation_machine.state(CLUSTER).upper()]

    def retry_state(self, node: str) -> tuple[int, float | None]:
        """``(failed reconnection attempts, next retry time)`` of ``node``."""
        n = self._nodes[node]
        return n.attempt, n.next_retry_at

    def stats(self, node: str) -> CommunicationStats:
        """The node's communication stats."""
        return self._nodes[node].stats

    def snapshot(self, node: str) -> NodeSnapshot:
        """A frozen snapshot of one node."""
        n = self._nodes[node]
        return NodeSnapshot(
            node=node,
            status=self.status(node),
            reconnection=self.reconnection(node),
            level=n.level,
            stats=n.stats,
            load=n.load,
            attempt=n.attempt,
            next_retry_at=n.next_retry_at,
            online_since=n.online_since,
        )

    def summary(self) -> ClusterSummary:
        """A frozen summary of the whole cluster."""
        snaps = tuple(self.snapshot(n) for n in self._nodes)
        emas = [s.stats.ema for s in snaps if s.stats.ema is not None]
        return ClusterSummary(
            node_count=len(snaps),
            counts=self.status_machine.counts(),
            level=self.level,
            mode=self.degradation.mode,
            self_suspected=self.self_suspected,
            total_active_requests=sum(
                (s.load.active_requests or 0) for s in snaps if s.load
            ),
            total_queued_requests=sum(
                (s.load.queued_requests or 0) for s in snaps if s.load
            ),
            average_latency_ms=(sum(emas) / len(emas) * 1000.0) if emas else None,
            nodes=snaps,
        )

    # -- outcomes --------------------------------------------------------------

    def record_success(
        self,
        node: str,
        latency: float,
        *,
        now: float,
        attempts: int = 1,
        load: LoadReport | None = None,
    ) -> list[TransitionRecord]:
        """A call to ``node`` succeeded (a probe or the program's own call).

        Args:
            node: the node id.
            latency: seconds the successful attempt took.
            now: the current time on the caller's clock.
            attempts: attempts the call needed.
            load: the node's load report, if the answer carried one.

        Returns:
            The transition records this caused, in order.
        """
        n = self._nodes[node]
        n.stats = n.stats.record_success(latency, now=now, attempts=attempts)
        if load is not None:
            n.load = load
        self._net_failing -= n.last_network_failure
        n.last_result_at, n.last_network_failure = now, False
        before = self.status(node)
        records: list[TransitionRecord] = []
        records += self._suspicion(now)
        ctx = self._ctx(n)
        self._fire(
            records, self.status_machine, node, NodeEvent.PROBE_SUCCEEDED, now, ctx
        )
        recon = self.reconnection(node)
        if recon is ReconnectState.CONNECTING:
            self._fire(
                records,
                self.reconnect_machine,
                node,
                ReconnectEvent.ATTEMPT_SUCCEEDED,
                now,
                ctx,
            )
        elif recon is not ReconnectState.IDLE and self.status(node) in _SERVING:
            self._fire(
                records,
                self.reconnect_machine,
                node,
                ReconnectEvent.NODE_ONLINE,
                now,
                ctx,
            )
        if self.reconnection(node) is ReconnectState.IDLE:
            n.attempt, n.next_retry_at, n.last_delay = 0, None, None
        self._after_status(n, now, before)
        records += self._evaluate(now)
        return records

    def record_failure(
        self,
        node: str,
        classification: Classification,
        *,
        now: float,
        attempts: int = 1,
    ) -> list[TransitionRecord]:
        """A call to ``node`` failed with ``classification``.

        Failures that are not the node's (``Origin.LOCAL``, cancellation) only
        count as local failures. While the monitor suspects its own network,
        network-level failures are held: counted as local, never pushing a
        node towards offline or failed, never using up reconnection attempts.

        Returns:
            The transition records this caused, in order.
        """
        n = self._nodes[node]
        if not classification.counts_against_node:
            n.stats = n.stats.record_failure(classification, now=now, attempts=attempts)
            return []
        network = classification.category in NETWORK_LEVEL
        self._net_failing += network - n.last_network_failure
        n.last_result_at, n.last_network_failure = now, network
        before = self.status(node)
        records: list[TransitionRecord] = []
        records += self._suspicion(now)
        held = self.self_suspected and network
        if held:
            n.held += 1
            local = attrs.evolve(classification, origin=Origin.LOCAL)
            n.stats = n.stats.record_failure(local, now=now, attempts=attempts)
        else:
            n.stats = n.stats.record_failure(classification, now=now, attempts=attempts)
            ctx = self._ctx(n, classification)
            self._fire(
                records, self.status_machine, node, NodeEvent.PROBE_FAILED, now, ctx
            )
        status = self.status(node)
        recon = self.reconnection(node)
        if recon is ReconnectState.CONNECTING:
            if not held:
                n.attempt += 1
            ctx = self._ctx(n, classification, attempt=0 if held else n.attempt)
            self._fire(
                records,
                self.reconnect_machine,
                node,
                ReconnectEvent.ATTEMPT_FAILED,
                now,
                ctx,
            )
            if self.reconnection(node) is ReconnectState.WAITING:
                self._schedule(n, classification, now)
        if (
            status is NodeStatus.OFFLINE
            and self.reconnection(node) is ReconnectState.IDLE
        ):
            ctx = self._ctx(n, classification)
            self._fire(
                records,
                self.reconnect_machine,
                node,
                ReconnectEvent.NODE_OFFLINE,
                now,
                ctx,
            )
            n.attempt = 0
            self._schedule(n, classification, now)
        if status is NodeStatus.FAILED and self.reconnection(node) in (
            ReconnectState.WAITING,
            ReconnectState.CONNECTING,
        ):
            self._fire(
                records,
                self.reconnect_machine,
                node,
                ReconnectEvent.RESET,
                now,
                self._ctx(n),
                reason="node failed: reconnection stopped until an operator reset",
            )
            n.next_retry_at = None
        self._after_status(n, now, before)
        records += self._evaluate(now)
        return records

    # -- reconnection ----------------------------------------------------------

    def due_reconnects(self, *, now: float) -> list[str]:
        """Nodes whose backoff timer has elapsed (reconnection ``waiting``)."""
        return [
            n.node
            for n in self._nodes.values()
            if n.next_retry_at is not None
            and n.next_retry_at <= now
            and self.reconnection(n.node) is ReconnectState.WAITING
        ]

    def next_reconnect_at(self) -> float | None:
        """The earliest pending reconnection time, if any."""
        times = [
            n.next_retry_at
            for n in self._nodes.values()
            if n.next_retry_at is not None
            and self.reconnection(n.node) is ReconnectState.WAITING
        ]
        return min(times) if times else None

    def begin_reconnect(self, node: str, *, now: float) -> list[TransitionRecord]:
        """The node's backoff elapsed: ``waiting -> connecting``. Probe it next."""
        n = self._nodes[node]
        records: list[TransitionRecord] = []
        self._fire(
            records,
            self.reconnect_machine,
            node,
            ReconnectEvent.TIMER_FIRED,
            now,
            self._ctx(n),
        )
        n.next_retry_at = None
        return records

    def _schedule(self, n: _Node, c: Classification | None, now: float) -> None:
        # The delay index is the number of failed attempts so far (0 first).
        # Persistent failures keep polling at the capped delay (with jitter).
        attempt = n.attempt
        if c is not None and c.severity is Severity.PERSISTENT:
            attempt = 10**9
        delay = self.reconnect_policy.delay_for(
            attempt, n.rng, c, now=now, previous=n.last_delay
        )
        n.last_delay = delay
        n.next_retry_at = now + delay

    # -- operators ---------------------------------------------------------------

    def operator(
        self, node: str, event: NodeEvent, *, now: float, reason: str = ""
    ) -> list[TransitionRecord]:
        """Fire an operator or life-cycle event: reset, maintenance, stop, fail.

        ``reset`` also re-arms reconnection and clears the failure streak.

        Raises:
            TransitionNotAllowed: the node's status has no edge for ``event``.
        """
        n = self._nodes[node]
        records: list[TransitionRecord] = []
        self._fire(
            records,
            self.status_machine,
            node,
            event,
            now,
            self._ctx(n),
            reason=reason,
            force=True,
        )
        if event is NodeEvent.RESET:
            n.stats = attrs.evolve(
                n.stats, consecutive_failures=0, consecutive_successes=0
            )
            n.attempt, n.next_retry_at, n.last_delay = 0, None, None
            if self.reconnection(node) is not ReconnectState.IDLE:
                self._fire(
                    records,
                    self.reconnect_machine,
                    node,
                    ReconnectEvent.RESET,
                    now,
                    self._ctx(n),
                    reason=reason,
                )
        self._after_status(n, now)
        records += self._evaluate(now)
        return records

    # -- routing -----------------------------------------------------------------

    def routes(self, *, now: float) -> list[Route]:
        """The nodes a request may use now, best first.

        Online nodes, weighted by a slow-start ramp after they (re)join;
        degraded nodes only while the degradation mode tolerates their last
        failure; busy nodes only when nothing better is left.
        """
        online: list[Route] = []
        degraded: list[Route] = []
        busy: list[Route] = []
        cluster = self.level
        for n in self._nodes.values():
            status = self.status(n.node)
            if status is NodeStatus.ONLINE:
                online.append(Route(n.node, self._ramp(n, now), status))
            elif status is NodeStatus.DEGRADED:
                if should_tolerate(
                    n.stats.last_classification,
                    mode=self.degradation.mode,
                    cluster=cluster,
                    node=n.level,
                ):
                    degraded.append(Route(n.node, 0.5 * self._ramp(n, now), status))
            elif status is NodeStatus.BUSY:
                busy.append(Route(n.node, 0.25, status))
        chosen = online + degraded
        return chosen if chosen else busy

    def tolerates(self, node: str, classification: Classification | None) -> bool:
        """Whether the degradation mode tolerates this error from ``node`` now."""
        return should_tolerate(
            classification,
            mode=self.degradation.mode,
            cluster=self.level,
            node=self._nodes[node].level,
        )

    def _ramp(self, n: _Node, now: float) -> float:
        if n.online_since is None or self.slow_start <= 0:
            return 1.0
        return max(0.1, min(1.0, (now - n.online_since) / self.slow_start))

    # -- internals ---------------------------------------------------------------

    def _ctx(
        self,
        n: _Node,
        classification: Classification | None = None,
        *,
        attempt: int | None = None,
    ) -> GuardContext:
        # n.losses is pruned to the flap window on every status update.
        return GuardContext(
            classification=classification,
            recover_needed=self.thresholds.recover_needed(len(n.losses)),
            stats=n.stats,
            thresholds=self.thresholds,
            load=n.load,
            attempt=n.attempt if attempt is None else attempt,
            policy=self.reconnect_policy,
            give_up_on_persistent=self.give_up_on_persistent,
        )

    def _fire(
        self,
        records: list[TransitionRecord],
        engine: Engine,
        node: str,
        event: str,
        now: float,
        ctx: GuardContext,
        *,
        reason: str = "",
        force: bool = False,
    ) -> None:
        record = engine.fire(node, event, now=now, ctx=ctx, reason=reason)
        if record is not None and (record.changed or self.include_internal or force):
            records.append(record)

    def _after_status(
        self, n: _Node, now: float, before: NodeStatus | None = None
    ) -> None:
        status = self.status(n.node)
        if before is not None and status != before and status in _UNTRUSTED:
            # Recovery counts successes from the moment trust was lost, so a
            # node degraded for slowness needs recover_after fast answers.
            n.stats = attrs.evolve(n.stats, consecutive_successes=0)
            if before not in _UNTRUSTED:
                n.losses.append(now)
        horizon = now - self.thresholds.flap_window
        while n.losses and n.losses[0] < horizon:
            n.losses.pop(0)
        if status is NodeStatus.ONLINE:
            if n.online_since is None:
                n.online_since = now
        else:
            n.online_since = None
        ratio = latency_ratio(n.stats, self.thresholds)
        level = node_level(
            n.stats.consecutive_failures,
            ratio,
            self.thresholds,
            failed=status is NodeStatus.FAILED,
        )
        if status is NodeStatus.OFFLINE:
            level = max(level, DegradationLevel.SEVERE)
        elif status is NodeStatus.DEGRADED:
            level = max(level, DegradationLevel.MODERATE)
        n.level = level
        counts = status not in (NodeStatus.MAINTENANCE, NodeStatus.STOPPING)
        self._count(n.node, level if counts else None)

    def _count(self, node: str, level: DegradationLevel | None) -> None:
        old = self._counted.pop(node, None)
        if old is not None:
            self._level_counts[old] -= 1
        if level is not None:
            self._counted[node] = level
            self._level_counts[level] += 1

    def _evaluate(self, now: float) -> list[TransitionRecord]:
        target = cluster_level_from_counts(self._level_counts, self.degradation)
        if target.label == self.degradation_machine.state(CLUSTER):
            return []
        counted = self._counted
        records: list[TransitionRecord] = []
        for _ in range(len(DegradationLevel)):
            record = self.degradation_machine.fire(
                CLUSTER,
                DegradationEvent.EVALUATE,
                now=now,
                ctx=GuardContext(target=target),
                reason=f"cluster level computed as {target.label} from {len(counted)} nodes",
            )
            if record is None or record.internal:
                break
            records.append(record)
        return records

    def _suspicion(self, now: float) -> list[TransitionRecord]:
        p = self.suspicion
        if not self.self_suspected and self._net_failing < p.fraction * p.min_nodes:
            return []  # cannot be suspected: too few network failures anywhere
        recent = [
            n
            for n in self._nodes.values()
            if n.last_result_at is not None and now - n.last_result_at <= p.window
        ]
        failing = sum(1 for n in recent if n.last_network_failure)
        suspected = len(recent) >= p.min_nodes and failing >= p.fraction * len(recent)
        if suspected == self.self_suspected:
            return []
        self.self_suspected = suspected
        level = self.degradation_machine.state(CLUSTER)
        if suspected:
            reason = (
                f"self-suspicion: {failing}/{len(recent)} nodes failing at the network level "
                "at once; suspecting the monitor's own network, holding node verdicts"
            )
        else:
            reason = "self-suspicion cleared: nodes answer again; node verdicts resume"
        return [
            TransitionRecord(
                ts=now,
                machine="degradation",
                node=CLUSTER,
                trigger="self_suspicion" if suspected else "self_suspicion_cleared",
                source=level,
                dest=level,
                internal=True,
                reason=reason,
            )
        ]
