"""The trio runtime against fake Ollama nodes on loopback, on trio's MockClock.

Real sockets, virtual time: a node that hangs for minutes costs milliseconds.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import trio
import trio.testing

from nodefsm import (
    Category,
    ConfigurationError,
    MonitorConfig,
    NodeEvent,
    NodeStatus,
    Probe,
    ReconnectState,
    RetryPolicy,
    TransitionNotAllowed,
    TransitionRecord,
    open_monitor,
)
from nodefsm._monitor import Monitor
from nodefsm.testing import FakeNode, Fault, fake_node

CONFIG = MonitorConfig(interval=1.0, jitter=0.1)


class Recorder:
    """Collects every record published by a monitor."""

    def __init__(self) -> None:
        self.records: list[TransitionRecord] = []

    def path(self, node: str, machine: str = "node_status") -> list[str]:
        return [r.dest for r in self.records if r.node == node and r.machine == machine]

    def first(
        self, node: str, dest: str, machine: str = "node_status"
    ) -> TransitionRecord:
        return next(
            r
            for r in self.records
            if r.node == node and r.dest == dest and r.machine == machine
        )


@asynccontextmanager
async def monitored(
    *nodes: FakeNode, config: MonitorConfig = CONFIG, **kwargs: object
) -> AsyncIterator[tuple[Monitor, Recorder]]:
    recorder = Recorder()
    async with open_monitor(
        [n.url for n in nodes], config=config, rng=random.Random(7), **kwargs
    ) as m:  # type: ignore[arg-type]
        sub = m.subscribe()

        async def collect() -> None:
            async for r in sub:
                recorder.records.append(r)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(collect)
            yield m, recorder
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()


async def test_healthy_nodes_come_online(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Every healthy node goes starting -> online within one fast interval."""
    async with fake_node() as a, fake_node() as b, monitored(a, b) as (m, rec):
        await trio.sleep(0.5)
        assert ["online"] == rec.path(a.node)
        assert ["online"] == rec.path(b.node)
        await trio.sleep(10)
        assert {NodeStatus.ONLINE} == {m.snapshot(n).status for n in m.nodes()}
        result = m.last_probe(a.node)
        assert result is not None
        assert "0.5.7" == result.version


async def test_killed_node_goes_offline_and_recovers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Killed: online -> degraded -> offline (refused); restarted: back online after 2 successes."""
    async with fake_node() as a, fake_node() as b, monitored(a, b) as (m, rec):
        await trio.sleep(2)
        killed_at = m.now()
        await a.stop()
        await trio.sleep(10)
        assert ["online", "degraded", "offline"] == rec.path(a.node)
        offline = rec.first(a.node, "offline")
        assert Category.CONNECTION_REFUSED.value == offline.to_json()["category"]
        # 5 failures: at most one steady interval, then four fast ones (+10 % jitter).
        assert offline.ts - killed_at <= 1.1 * (1.0 + 4 * 0.25) + 0.1
        assert ["waiting", "connecting", "waiting"] == rec.path(a.node, "reconnection")[
            :3
        ]
        await a.restart()
        await trio.sleep(40)
        assert "online" == rec.path(a.node)[-1]
        assert "idle" == rec.path(a.node, "reconnection")[-1]
        assert ["online"] == rec.path(b.node)


async def test_hung_node_times_out(autojump_clock: trio.testing.MockClock) -> None:
    """Hung (accepts, never answers): timeouts take it offline."""
    async with fake_node() as a, monitored(a) as (_m, rec):
        await trio.sleep(3)
        a.fault = Fault.hang()
        await trio.sleep(15)
        assert ["online", "degraded", "offline"] == rec.path(a.node)
        assert "timeout" == rec.first(a.node, "offline").to_json()["category"]
        a.fault = Fault.none()
        await trio.sleep(60)
        assert "online" == rec.path(a.node)[-1]


async def test_slow_node_beyond_its_rto(autojump_clock: trio.testing.MockClock) -> None:
    """A node that becomes 3 s slow exceeds its adaptive timeout and is marked down."""
    async with fake_node() as a, monitored(a) as (m, rec):
        await trio.sleep(5)
        assert m.snapshot(a.node).stats.timeout < 1.0
        a.fault = Fault.slow(3.0)
        await trio.sleep(20)
        assert "degraded" in rec.path(a.node)
        assert "timeout" == rec.first(a.node, "degraded").to_json()["category"]


async def test_resetting_node(autojump_clock: trio.testing.MockClock) -> None:
    """Connection resets count as network_receive failures."""
    async with fake_node() as a, monitored(a) as (_m, rec):
        await trio.sleep(2)
        a.fault = Fault.reset()
        await trio.sleep(10)
        assert ["online", "degraded", "offline"] == rec.path(a.node)
        assert "network_receive" == rec.first(a.node, "degraded").to_json()["category"]


async def test_503_with_retry_after_is_busy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """503 + Retry-After: busy, not offline; back online when it clears."""
    async with fake_node() as a, monitored(a) as (_m, rec):
        await trio.sleep(2)
        a.fault = Fault.http_status(503, retry_after="5")
        await trio.sleep(20)
        assert ["online", "busy"] == rec.path(a.node)
        busy = rec.first(a.node, "busy")
        assert busy.classification is not None
        assert 5.0 == busy.classification.retry_after
        a.fault = Fault.none()
        await trio.sleep(5)
        assert ["online", "busy", "online"] == rec.path(a.node)


async def test_bad_json_and_wrong_fields(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Invalid JSON is a temporary protocol violation; wrong fields go offline at once."""
    async with fake_node() as a, fake_node() as b, monitored(a, b) as (_m, rec):
        await trio.sleep(2)
        a.fault = Fault.bad_json()
        b.fault = Fault.wrong_fields()
        await trio.sleep(10)
        assert ["online", "degraded", "offline"] == rec.path(a.node)
        assert (
            "protocol_violation" == rec.first(a.node, "degraded").to_json()["category"]
        )
        assert ["online", "offline"] == rec.path(b.node)[:2]
        first = rec.first(b.node, "offline").to_json()
        assert ("validation_failure", "persistent") == (
            first["category"],
            first["severity"],
        )


async def test_several_nodes_fail_at_once_with_refusals(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Three of four nodes refused at once: all three offline, no self-suspicion."""
    async with (
        fake_node() as a,
        fake_node() as b,
        fake_node() as c,
        fake_node() as d,
        monitored(a, b, c, d) as (m, _rec),
    ):
        await trio.sleep(2)
        for n in (a, b, c):
            await n.stop()
        await trio.sleep(10)
        assert {NodeStatus.OFFLINE} == {m.snapshot(n.node).status for n in (a, b, c)}
        assert NodeStatus.ONLINE == m.snapshot(d.node).status
        assert not m.summary().self_suspected
        assert "severe" == m.cluster.level.label


async def test_own_network_failure_raises_self_suspicion(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Every node timing out at once: the monitor suspects itself and holds verdicts."""
    nodes = [FakeNode() for _ in range(4)]
    async with trio.open_nursery() as nursery:
        for n in nodes:
            await n.start(nursery)
        async with monitored(*nodes) as (m, rec):
            await trio.sleep(2)
            for n in nodes:
                n.fault = Fault.hang()
            await trio.sleep(30)
            assert m.summary().self_suspected
            notices = [r for r in rec.records if r.trigger == "self_suspicion"]
            assert 1 == len(notices)
            assert all(
                m.snapshot(n.node).status is not NodeStatus.OFFLINE for n in nodes
            )
            assert all(
                m.snapshot(n.node).status is not NodeStatus.FAILED for n in nodes
            )
            for n in nodes:
                n.fault = Fault.none()
            await trio.sleep(10)
            assert not m.summary().self_suspected
            assert {NodeStatus.ONLINE} == {m.snapshot(n.node).status for n in nodes}
        nursery.cancel_scope.cancel()


async def test_ollama_cluster_profile_drives_busy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The seed's /api/health load report drives busy and back."""
    config = MonitorConfig(interval=1.0, probe=Probe(profile="ollama-cluster"))
    async with fake_node() as a, monitored(a, config=config) as (m, rec):
        await trio.sleep(2)
        a.fault = Fault.overloaded()
        await trio.sleep(3)
        assert ["online", "busy"] == rec.path(a.node)
        snap = m.snapshot(a.node)
        assert snap.load is not None
        assert 20 == snap.load.active_requests
        assert 20 == m.summary().total_active_requests
        a.fault = Fault.none()
        await trio.sleep(3)
        assert ["online", "busy", "online"] == rec.path(a.node)


async def test_models_are_reported(autojump_clock: trio.testing.MockClock) -> None:
    """With models=True the ollama profile also reads /api/ps."""
    config = MonitorConfig(interval=1.0, probe=Probe(models=True))
    async with (
        fake_node(models=("a:1b", "b:7b")) as a,
        monitored(a, config=config) as (m, _),
    ):
        await trio.sleep(2)
        result = m.last_probe(a.node)
        assert result is not None
        assert ("a:1b", "b:7b") == result.models
        assert 3_000_000_000 == result.vram_bytes


async def test_passive_outcomes_drive_the_same_machines(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """observe() classifies the program's own failures; cancellation never counts."""
    config = MonitorConfig(interval=1000.0)
    async with fake_node() as a, monitored(a, config=config) as (m, rec):
        await trio.sleep(1)
        assert NodeStatus.ONLINE == m.snapshot(a.node).status
        for _ in range(3):
            with pytest.raises(ConnectionResetError), m.observe(a.node):
                raise ConnectionResetError("reset by peer")
        await trio.testing.wait_all_tasks_blocked()
        assert ["online", "degraded"] == rec.path(a.node)
        with trio.move_on_after(1), m.observe(a.node):
            await trio.sleep(10)
        assert 3 == m.snapshot(a.node).stats.consecutive_failures
        verdict = m.report_failure(a.node, 503)
        assert verdict.tolerated
        verdict = m.report_failure(a.node, httpx.Response(401))
        assert not verdict.tolerated
        await trio.testing.wait_all_tasks_blocked()
        assert ["online", "degraded", "busy", "offline"] == rec.path(a.node)
        with m.observe(a.node):
            await trio.sleep(0.01)
        assert m.report_success(a.node, 0.01).tolerated
        assert m.report_failure(a.node, KeyboardInterrupt()).records == ()


async def test_slow_subscriber_never_stalls_probes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A subscriber that never reads loses records (counted); probes go on."""
    async with fake_node() as a, fake_node() as b, monitored(a, b) as (m, rec):
        lazy = m.subscribe(buffer=1)
        await trio.sleep(1)
        await a.stop()
        await trio.sleep(10)
        assert lazy.missed > 0
        assert "offline" in rec.path(a.node)
        first = await lazy.receive()
        assert "online" == first.dest
        lazy.close()


async def test_add_and_remove_nodes_while_running(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Nodes join and leave at run time; a removed node leaves no state behind."""
    async with fake_node() as a, fake_node() as b, monitored(a) as (m, _rec):
        await trio.sleep(1)
        node = m.add_node(b.url)
        assert b.node == node
        with pytest.raises(ConfigurationError, match="already monitored"):
            m.add_node(b.url)
        await trio.sleep(1)
        assert NodeStatus.ONLINE == m.snapshot(b.node).status
        before = b.requests
        m.remove_node(b.node)
        await trio.sleep(10)
        assert before == b.requests
        assert (a.node,) == m.nodes()
        assert b.node not in m.cluster
        assert m.last_probe(b.node) is None
        m.remove_node(b.node)  # idempotent


async def test_one_probe_in_flight_per_node(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A hung node holds at most one connection from the monitor at a time."""
    async with fake_node() as a, monitored(a) as (m, _rec):
        await trio.sleep(1)
        a.fault = Fault.slow(5.0)
        sent = m.probes_sent
        await trio.sleep(4.9)
        # With a ~0.2 s timeout each probe ends before the next starts.
        assert m.probes_sent - sent < 4.9 / 0.2 + 2


async def test_operator_events_and_maintenance(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Maintenance stops probing; ending it needs a probe to come back online."""
    async with fake_node() as a, monitored(a) as (m, rec):
        await trio.sleep(1)
        m.operator(a.node, NodeEvent.START_MAINTENANCE, reason="kernel upgrade")
        before = a.requests
        await trio.sleep(20)
        assert before == a.requests
        with pytest.raises(TransitionNotAllowed):
            m.operator(a.node, NodeEvent.START_MAINTENANCE)
        m.operator(a.node, NodeEvent.END_MAINTENANCE)
        await trio.sleep(1)
        assert ["online", "maintenance", "starting", "online"] == rec.path(a.node)
        assert "kernel upgrade" == rec.first(a.node, "maintenance").reason


async def test_reconnection_gives_up_then_polls_slowly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With 2 retries reconnection gives up; the node is still watched at downinter."""
    config = MonitorConfig(interval=1.0, reconnect_policy=RetryPolicy(retries=2))
    async with fake_node() as a, monitored(a, config=config) as (m, _rec):
        await trio.sleep(1)
        await a.stop()
        await trio.sleep(20)
        assert ReconnectState.GIVEN_UP == m.snapshot(a.node).reconnection
        assert 3 == m.snapshot(a.node).attempt
        await a.restart()
        await trio.sleep(30)
        assert NodeStatus.ONLINE == m.snapshot(a.node).status


async def test_self_node_life_cycle(autojump_clock: trio.testing.MockClock) -> None:
    """The monitor's own node: starting -> online on start, stopping on exit."""
    rec = Recorder()
    async with open_monitor([], self_node="self") as m:
        sub = m.subscribe()
        assert NodeStatus.ONLINE == m.snapshot("self").status
    async for r in sub:
        rec.records.append(r)
    assert ["online", "stopping"] == rec.path(
        "self"
    )  # the first subscriber gets the start too


async def test_routes_and_repr(autojump_clock: trio.testing.MockClock) -> None:
    """routes() lists online nodes; repr names the size."""
    async with fake_node() as a, fake_node() as b, monitored(a, b) as (m, _rec):
        await trio.sleep(1)
        await b.stop()
        await trio.sleep(10)
        assert [a.node] == [r.node for r in m.routes()]
        assert "<Monitor nodes=2" in repr(m)
        assert a.url == m.target(a.node).display


def test_config_validation() -> None:
    """MonitorConfig rejects nonsense with the field's name."""
    with pytest.raises(ConfigurationError, match="interval"):
        MonitorConfig(interval=0)
    with pytest.raises(ConfigurationError, match="jitter"):
        MonitorConfig(jitter=1.5)
    with pytest.raises(ConfigurationError, match="min_timeout"):
        MonitorConfig(min_timeout=5, max_timeout=1)
    with pytest.raises(ConfigurationError, match="event_buffer"):
        MonitorConfig(event_buffer=0)
    assert 0.25 == MonitorConfig(interval=1).fast
    assert 6.0 == MonitorConfig(interval=1).down


async def test_probe_headers(autojump_clock: trio.testing.MockClock) -> None:
    """ollama-cluster sends the seed's health headers; reconnection attempts are numbered."""
    config = MonitorConfig(
        interval=1.0, probe=Probe(profile="ollama-cluster", source_node="mon-1")
    )
    async with fake_node() as a, monitored(a, config=config) as (m, _):
        await trio.sleep(1)
        headers = a.last_headers
        assert ("true", "mon-1") == (
            headers["x-cluster-health-check"],
            headers["x-source-node"],
        )
        assert int(headers["x-request-timeout"]) >= 200
        a.fault = Fault.http_status(500)
        await trio.sleep(10)
        assert NodeStatus.OFFLINE == m.snapshot(a.node).status
        assert "x-reconnection-attempt" in a.last_headers
        assert (
            str(m.config.reconnect_policy.attempts)
            == a.last_headers["x-reconnection-max"]
        )
