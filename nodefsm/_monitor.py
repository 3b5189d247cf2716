"""The trio runtime: probes in a nursery feeding the machines.

``open_monitor`` is an async context manager: it opens a nursery, runs one
task per node (so exactly one probe is ever in flight per node: the Go code
probed every node from two loops), and cancels everything cleanly on exit.

Each node task loops: probe, feed the outcome to :class:`ClusterState`,
publish the transition records, then sleep for an interval chosen from the
node's state (``fast_interval`` while it changes state, ``interval`` when
steady, the reconnection backoff while offline, ``down_interval`` once
reconnection has given up), jittered so that nodes are not probed in
lockstep. Time comes from ``trio.current_time()``, so the whole runtime runs
on ``trio.testing.MockClock``; records are stamped with Unix time.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import attrs
import httpx
import trio

from ._classify import Classification, Origin, classify
from ._cluster import ClusterState, ClusterSummary, NodeSnapshot, Route, SuspicionPolicy
from ._config import DegradationPolicy, LoadReport, NodeThresholds
from ._engine import NodeEvent, NodeStatus, ReconnectState, TransitionRecord
from ._probe import Probe, ProbeResult, Target, parse_target, run_probe
from ._retry import RetryPolicy
from .exceptions import ConfigurationError

__all__ = [
    "Monitor",
    "MonitorConfig",
    "Subscription",
    "Verdict",
    "open_monitor",
]


#: The monitor's reconnection backoff: 0.5 s x1.5 up to 10 s, giving up after
#: 31 attempts (about 4.5 minutes). The seed's retry policy (0.1 s, 30 s cap,
#: 10 retries) gives up after about 18 s of backoff, shorter than a typical
#: restart; `nodefsm simulate --policy seed` shows the difference.
RECONNECT_POLICY = RetryPolicy(retries=30, base=0.5, cap=10.0, factor=1.5)


def _positive(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (math.isfinite(value) and value > 0)
    ):
        raise ConfigurationError(
            f"MonitorConfig: {attribute.name}={value!r} must be a finite number of seconds > 0"
        )


@attrs.frozen(kw_only=True)
class MonitorConfig:
    """How the monitor probes and judges.

    Args:
        interval: seconds between probes of a steady node (5).
        timeout: a fixed probe timeout in seconds; None (default) uses each
            node's adaptive RFC 6298 timeout within ``[min_timeout, max_timeout]``.
        min_timeout, max_timeout: bounds of the adaptive timeout (0.2, 10).
        fast_interval: interval while a node changes state (interval / 4),
            HAProxy's *fastinter*.
        down_interval: interval for nodes whose reconnection gave up
            (interval x 6), HAProxy's *downinter*.
        jitter: each interval is multiplied by ``U[1 - jitter, 1 + jitter]``.
        probe: what to ask each node.
        thresholds, reconnect_policy, degradation, suspicion: the policies
            (reconnection: :data:`RECONNECT_POLICY`).
        give_up_on_persistent: reconnection gives up on persistent errors.
        slow_start: seconds of the routing ramp after a node (re)joins.
        event_buffer: default buffer of each subscription.
    """

    interval: float = attrs.field(default=5.0, validator=_positive)
    timeout: float | None = attrs.field(default=None, validator=_positive)
    min_timeout: float = attrs.field(default=0.2, validator=_positive)
    max_timeout: float = attrs.field(default=10.0, validator=_positive)
    fast_interval: float | None = attrs.field(default=None, validator=_positive)
    down_interval: float | None = attrs.field(default=None, validator=_positive)
    jitter: float = 0.1
    probe: Probe = attrs.field(factory=Probe)
    thresholds: NodeThresholds = attrs.field(factory=NodeThresholds)
    reconnect_policy: RetryPolicy = attrs.field(factory=lambda: RECONNECT_POLICY)
    degradation: DegradationPolicy = attrs.field(factory=DegradationPolicy)
    suspicion: SuspicionPolicy = attrs.field(factory=SuspicionPolicy)
    give_up_on_persistent: bool = False
    slow_start: float = 10.0
    event_buffer: int = 1024

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.jitter < 1:
            raise ConfigurationError(
                f"MonitorConfig: jitter={self.jitter!r} must be in [0, 1)"
            )
        if self.min_timeout > self.max_timeout:
            raise ConfigurationError(
                f"MonitorConfig: min_timeout={self.min_timeout} must be <= "
                f"max_timeout={self.max_timeout}"
            )
        if self.event_buffer < 1:
            raise ConfigurationError("MonitorConfig: event_buffer must be >= 1")

    @property
    def fast(self) -> float:
        """The effective fast interval."""
        return self.fast_interval or self.interval / 4.0

    @property
    def down(self) -> float:
        """The effective down interval."""
        return self.down_interval or self.interval * 6.0


@attrs.frozen
class Verdict:
    """What a passive outcome did.

    Attributes:
        tolerated: whether the degradation mode tolerates this failure (True
            for a success): a caller may retry the same node when True.
        records: the transitions it caused.
    """

    tolerated: bool
    records: tuple[TransitionRecord, ...]


class Subscription:
    """A bounded stream of transition records for one subscriber.

    A slow subscriber never stalls the probes: when its buffer is full, new
    records are dropped for it and counted in :attr:`missed`. Use it as an
    async context manager and an async iterator::

        async with monitor.subscribe() as events:
            async for record in events:
                ...
    """

    def __init__(self, monitor: Monitor, buffer: float) -> None:
        self._monitor = monitor
        self._send, self._receive = trio.open_memory_channel[TransitionRecord](buffer)
        #: Records dropped because this subscriber's buffer was full.
        self.missed = 0

    def _offer(self, record: TransitionRecord) -> None:
        try:
            self._send.send_nowait(record)
        except trio.WouldBlock:
            self.missed += 1
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass

    def close(self) -> None:
        """Stop receiving; the iterator ends after the buffered records."""
        self._monitor._subscribers.discard(self)
        self._send.close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        self._receive.close()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> TransitionRecord:
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None

    async def receive(self) -> TransitionRecord:
        """The next record (waits)."""
        return await self._receive.receive()

    def receive_nowait(self) -> TransitionRecord:
        """The next buffered record.

        Raises:
            trio.WouldBlock: nothing is buffered.
        """
        return self._receive.receive_nowait()


class Monitor:
    """The running monitor. Create it with :func:`open_monitor`."""

    def __init__(
        self,
        nursery: trio.Nursery,
        client: httpx.AsyncClient,
        config: MonitorConfig,
        rng: random.Random,
        self_node: str | None,
        epoch: float | None = None,
    ) -> None:
        self.config = config
        self.cluster = ClusterState(
            thresholds=config.thresholds,
            reconnect_policy=config.reconnect_policy,
            degradation=config.degradation,
            suspicion=config.suspicion,
            rng=rng,
            give_up_on_persistent=config.give_up_on_persistent,
            slow_start=config.slow_start,
        )
        self._nursery = nursery
        self._client = client
        self._rng = rng
        self._targets: dict[str, Target] = {}
        self._scopes: dict[str, trio.CancelScope] = {}
        self._kicks: dict[str, trio.Event] = {}
        self._results: dict[str, ProbeResult] = {}
        self._due: dict[str, float] = {}
        self._subscribers: set[Subscription] = set()
        self._early: list[TransitionRecord] = []
        self._had_subscriber = False
        self._offset = (time.time() if epoch is None else epoch) - trio.current_time()
        self._node_rngs: dict[str, random.Random] = {}
        self.self_node = self_node
        self.probes_sent = 0

    def __repr__(self) -> str:
        return (
            f"<Monitor nodes={len(self._targets)} level={self.cluster.level.label!r}>"
        )

    # -- time --------------------------------------------------------------

    def now(self) -> float:
        """Unix seconds, advancing with ``trio.current_time()`` (so MockClock works)."""
        return self._offset + trio.current_time()

    # -- membership --------------------------------------------------------

    def add_node(self, url: str | Target) -> str:
        """Start monitoring a node; returns its id (``host:port``).

        Raises:
            ConfigurationError: a bad URL, or the node is already monitored.
        """
        target = url if isinstance(url, Target) else parse_target(url)
        if target.node in self._targets:
            raise ConfigurationError(f"node {target.node} is already monitored")
        self.cluster.add_node(target.node)
        self._targets[target.node] = target
        # One generator per node, drawn in add order: runs are reproducible
        # whatever order the node tasks happen to be scheduled in.
        self._node_rngs[target.node] = random.Random(self._rng.getrandbits(64))
        self._kicks[target.node] = trio.Event()
        self._nursery.start_soon(
            self._node_task, target.node, name=f"nodefsm:{target.node}"
        )
        return target.node

    def remove_node(self, node: str) -> None:
        """Stop monitoring ``node`` and drop every piece of its state."""
        scope = self._scopes.pop(node, None)
        if scope is not None:
            scope.cancel()
        self._targets.pop(node, None)
        self._kicks.pop(node, None)
        self._results.pop(node, None)
        self._due.pop(node, None)
        self._node_rngs.pop(node, None)
        if node in self.cluster:
            self._publish(self.cluster.remove_node(node, now=self.now()))

    def nodes(self) -> tuple[str, ...]:
        """Monitored node ids."""
        return tuple(self._targets)

    def target(self, node: str) -> Target:
        """The node's target (URL without credentials)."""
        return self._targets[node]

    # -- reading -----------------------------------------------------------

    def snapshot(self, node: str) -> NodeSnapshot:
        """A frozen snapshot of one node."""
        return self.cluster.snapshot(node)

    def last_probe(self, node: str) -> ProbeResult | None:
        """The node's last probe result, if any."""
        return self._results.get(node)

    def summary(self) -> ClusterSummary:
        """A frozen summary of the cluster."""
        return self.cluster.summary()

    def routes(self) -> list[Route]:
        """The nodes a request may use now (see :meth:`ClusterState.routes`)."""
        return self.cluster.routes(now=self.now())

    # -- events ------------------------------------------------------------

    def subscribe(self, *, buffer: float | None = None) -> Subscription:
        """A new bounded subscription to every transition record.

        The first subscriber also receives what was published before it
        subscribed (up to ``event_buffer`` records), so nothing from the
        monitor's start is lost.

        Args:
            buffer: records held for this subscriber before new ones are
                dropped (and counted in ``missed``); ``math.inf`` for none
                dropped (only for consumers known to keep up).
        """
        sub = Subscription(self, buffer or self.config.event_buffer)
        first = not self._subscribers and not self._had_subscriber
        self._subscribers.add(sub)
        self._had_subscriber = True
        if first:
            # Records published before anyone subscribed (the self node
            # coming online at start) go to the first subscriber.
            for record in self._early:
                sub._offer(record)
        self._early.clear()
        return sub

    def _publish(self, records: Iterable[TransitionRecord]) -> None:
        for record in records:
            if not self._had_subscriber and len(self._early) < self.config.event_buffer:
                self._early.append(record)
            for sub in list(self._subscribers):
                sub._offer(record)

    # -- passive outcomes --------------------------------------------------

    def report_success(
        self, node: str, latency: float, *, load: LoadReport | None = None
    ) -> Verdict:
        """The program's own call to ``node`` succeeded in ``latency`` seconds."""
        records = self.cluster.record_success(node, latency, now=self.now(), load=load)
        self._publish(records)
        self._kick(node)
        return Verdict(True, tuple(records))

    def report_failure(self, node: str, failure: object) -> Verdict:
        """The program's own call to ``node`` failed.

        Args:
            node: the node id.
            failure: an exception, an ``httpx.Response``, a status code, or a
                :class:`Classification`.

        Returns:
            The :class:`Verdict`: whether the degradation mode tolerates it,
            and the transitions it caused. Cancellations change nothing.
        """
        c = failure if isinstance(failure, Classification) else classify(failure)
        if c.origin is Origin.CANCELLED or c.origin is Origin.NONE:
            return Verdict(True, ())
        records = self.cluster.record_failure(node, c, now=self.now())
        self._publish(records)
        self._kick(node)
        return Verdict(self.cluster.tolerates(node, c), tuple(records))

    @contextmanager
    def observe(self, node: str) -> Iterator[None]:
        """Time and classify the program's own call to ``node``.

        The exception, if any, is re-raised untouched; cancellation is never
        counted against the node::

            with monitor.observe(node):
                response = await client.post(...)
                response.raise_for_status()
        """
        start = trio.current_time()
        try:
            yield
        except BaseException as exc:
            self.report_failure(node, exc)
            raise
        self.report_success(node, trio.current_time() - start)

    # -- operators ---------------------------------------------------------

    def operator(self, node: str, event: NodeEvent, *, reason: str = "") -> None:
        """Fire an operator event (reset, maintenance, stop, fail) on ``node``.

        Raises:
            TransitionNotAllowed: the node's status has no edge for ``event``.
        """
        self._publish(self.cluster.operator(node, event, now=self.now(), reason=reason))
        self._kick(node, probe_soon=True)

    # -- the node task -----------------------------------------------------

    def _kick(self, node: str, *, probe_soon: bool = False) -> None:
        if node in self._due and node in self.cluster:
            soon = trio.current_time() + (
                0.0 if probe_soon else self._next_interval(node)
            )
            self._due[node] = min(self._due[node], soon)
        kick = self._kicks.get(node)
        if kick is not None:
            kick.set()
            self._kicks[node] = trio.Event()

    async def _wait(self, node: str, seconds: float) -> None:
        kick = self._kicks.get(node)
        if kick is None:
            await trio.sleep(seconds)
            return
        with trio.move_on_after(max(0.0, seconds)):
            await kick.wait()

    def _jittered(self, node: str, seconds: float) -> float:
        j = self.config.jitter
        return seconds * self._node_rngs[node].uniform(1.0 - j, 1.0 + j)

    def _timeout(self, node: str) -> float:
        if self.config.timeout is not None:
            return self.config.timeout
        rto = self.cluster.stats(node).timeout
        return min(self.config.max_timeout, max(self.config.min_timeout, rto))

    async def _probe(self, node: str, *, attempt: int | None = None) -> None:
        target = self._targets[node]
        self.probes_sent += 1
        result = await run_probe(
            self._client,
            target,
            self.config.probe,
            timeout=self._timeout(node),
            attempt=attempt,
            attempts=self.config.reconnect_policy.attempts
            if attempt is not None
            else None,
        )
        if node not in self.cluster:  # removed while the probe was in flight
            return
        self._results[node] = result
        now = self.now()
        if result.ok:
            records = self.cluster.record_success(
                node, result.latency, now=now, load=result.load
            )
        else:
            assert result.classification is not None
            records = self.cluster.record_failure(node, result.classification, now=now)
        self._publish(records)

    def _next_interval(self, node: str) -> float:
        status = self.cluster.status(node)
        recon = self.cluster.reconnection(node)
        stats = self.cluster.stats(node)
        cfg = self.config
        if recon is ReconnectState.GIVEN_UP:
            return self._jittered(node, cfg.down)
        changing = (
            status is NodeStatus.STARTING
            or (stats.consecutive_failures > 0 and status is not NodeStatus.OFFLINE)
            or (
                status in (NodeStatus.DEGRADED, NodeStatus.OFFLINE)
                and stats.consecutive_successes > 0
            )
        )
        return self._jittered(node, cfg.fast if changing else cfg.interval)

    async def _node_task(self, node: str) -> None:
        with trio.CancelScope() as scope:
            self._scopes[node] = scope
            # Spread first probes (over at most half a second) so a big
            # cluster is not probed in one burst, and start soon.
            await trio.sleep(
                self._node_rngs[node].uniform(0.0, min(self.config.fast, 1.0) / 2.0)
            )
            while True:
                status = self.cluster.status(node)
                recon = self.cluster.reconnection(node)
                if recon is ReconnectState.WAITING:
                    _, due = self.cluster.retry_state(node)
                    if due is not None and due > self.now():
                        await self._wait(node, due - self.now())
                        continue
                    self._publish(self.cluster.begin_reconnect(node, now=self.now()))
                    await self._probe(
                        node, attempt=self.cluster.retry_state(node)[0] + 1
                    )
                elif status in (NodeStatus.MAINTENANCE, NodeStatus.FAILED):
                    await self._wait(node, math.inf)  # until an operator event
                    continue
                else:
                    due = self._due.get(node, 0.0)
                    if due > trio.current_time():
                        # A kick (passive outcome, operator) re-evaluates the
                        # state; it does not force a probe before it is due.
                        await self._wait(node, due - trio.current_time())
                        continue
                    await self._probe(node)
                self._due[node] = trio.current_time() + self._next_interval(node)

    # -- shutdown ------------------------------------------------------------

    def _close(self) -> None:
        for scope in self._scopes.values():
            scope.cancel()
        for sub in list(self._subscribers):
            sub.close()


@asynccontextmanager
async def open_monitor(
    urls: Iterable[str | Target] = (),
    *,
    config: MonitorConfig | None = None,
    client: httpx.AsyncClient | None = None,
    rng: random.Random | None = None,
    self_node: str | None = None,
    epoch: float | None = None,
) -> AsyncIterator[Monitor]:
    """Run a monitor for the block's duration.

    Args:
        urls: nodes to monitor from the start (more can be added later).
        config: probing and judging policies.
        client: an ``httpx.AsyncClient`` to use (the caller closes it); by
            default one is created with TLS verification on and closed on exit.
        rng: randomness for jitter and backoff (seed it for reproducible runs).
        self_node: an id for the monitor's own node, which follows the seed's
            ClusterMode life cycle: ``starting -> online`` on start and
            ``stopping`` on exit. It is not probed.
        epoch: the Unix time that ``trio.current_time() == 0`` stands for
            (default: now). The simulator passes 0 so runs are reproducible.

    Yields:
        The running :class:`Monitor`. On exit every node task is cancelled
        and awaited; no task is left running.
    """
    config = config or MonitorConfig()
    rng = rng or random.Random()
    owns_client = client is None
    if client is None:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        client = httpx.AsyncClient(timeout=None, limits=limits, follow_redirects=False)
    try:
        async with trio.open_nursery() as nursery:
            monitor = Monitor(nursery, client, config, rng, self_node, epoch)
            if self_node is not None:
                monitor.cluster.add_node(self_node)
                monitor._publish(
                    monitor.cluster.record_success(self_node, 0.0, now=monitor.now())
                )
            try:
                for url in urls:
                    monitor.add_node(url)
                yield monitor
            finally:
                if self_node is not None and self_node in monitor.cluster:
                    records = monitor.cluster.operator(
                        self_node,
                        NodeEvent.STOP,
                        now=monitor.now(),
                        reason="monitor shutting down",
                    )
                    monitor._publish(records)
                monitor._close()
                nursery.cancel_scope.cancel()
    finally:
        if owns_client:
            with trio.CancelScope(shield=True):
                await client.aclose()
