"""Discovery: records fed in-process (no multicast leaves the test)."""

from __future__ import annotations

import io
import threading
from collections.abc import AsyncIterator
from contextlib import aclosing
from functools import partial
from typing import Any

import pytest
import trio
import trio.testing
import zeroconf

from nodefsm import MonitorConfig, NodeStatus, open_monitor
from nodefsm._cli import main
from nodefsm._discovery import (
    DiscoveryEvent,
    EventKind,
    mdns_events,
    parse_service,
    run_discovery,
)
from nodefsm.testing import fake_node

SEED_TXT = {
    b"id": b"worker-7",
    b"name": b"gpu-box",
    b"role": b"worker",
    b"api_port": b"11434",
    b"cluster_port": b"12094",
    b"version": b"v0.2.0",
    b"auto_discovery": b"true",
}


def test_parse_service_prefers_ipv4_and_txt_port() -> None:
    """IPv4 first; TXT api_port wins; the seed's TXT keys are kept."""
    node = parse_service(
        "w7._ollama._tcp.local.", ["fe80::1", "127.0.0.1"], 9, SEED_TXT
    )
    assert node is not None
    assert ("worker-7", "127.0.0.1:11434") == (node.node_id, node.target.node)
    assert "worker" == node.txt["role"]
    v6 = parse_service("v6", ["::1"], 11434, {})
    assert v6 is not None
    assert ("mdns-v6", "[::1]:11434") == (v6.node_id, v6.target.node)


def test_parse_service_skips_self_and_unusable() -> None:
    """Our own announcement, no address, or a bad port: skipped."""
    assert (
        parse_service("me", ["127.0.0.1"], 11434, SEED_TXT, self_id="worker-7") is None
    )
    assert parse_service("x", ["not-an-ip"], 11434, {}) is None
    assert parse_service("x", ["127.0.0.1"], 0, {}) is None


async def feed(
    events: list[tuple[float, DiscoveryEvent]],
) -> AsyncIterator[DiscoveryEvent]:
    for delay, event in events:
        await trio.sleep(delay)
        yield event
    await trio.sleep_forever()


async def test_discovered_nodes_start_in_starting_and_expire(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A discovered node must pass probes; it is removed a TTL after it goes."""
    async with fake_node() as a:
        port = int(a.node.rsplit(":", 1)[1])
        found = parse_service("a", ["127.0.0.1"], port, {b"id": b"a"})
        assert found is not None
        seen = DiscoveryEvent(EventKind.SEEN, "a", found)
        events = [(0.0, seen), (5.0, seen), (5.0, DiscoveryEvent(EventKind.GONE, "a"))]
        async with open_monitor([], config=MonitorConfig(interval=1.0)) as m:
            sub = m.subscribe()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(partial(run_discovery, m, feed(events), ttl=10.0))
                await trio.sleep(0.01)
                assert (a.node,) == m.nodes()
                first = await sub.receive()
                assert ("starting", "online") == (first.source, first.dest)
                await trio.sleep(12)
                assert (a.node,) == m.nodes()  # gone at t=10, kept until t=20
                await trio.sleep(15)
                assert () == m.nodes()
                nursery.cancel_scope.cancel()


async def test_stale_nodes_expire_without_goodbye(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A node never re-announced for a TTL is removed even without a goodbye."""
    found = parse_service("b", ["127.0.0.1"], 1, {})
    assert found is not None
    events = [
        (0.0, DiscoveryEvent(EventKind.SEEN, "b", found)),
        (0.0, DiscoveryEvent(EventKind.SEEN, "b", found)),
    ]
    async with (
        open_monitor([], config=MonitorConfig(interval=1.0)) as m,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(partial(run_discovery, m, feed(events), ttl=8.0))
        await trio.sleep(1)
        assert 1 == len(m.nodes())
        await trio.sleep(20)
        assert () == m.nodes()
        nursery.cancel_scope.cancel()


async def test_static_node_is_not_removed_by_discovery(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A node given on the command line and also announced stays after the announcement ends."""
    found = parse_service("c", ["127.0.0.1"], 1, {})
    assert found is not None
    async with (
        open_monitor(["http://127.0.0.1:1"], config=MonitorConfig(interval=1.0)) as m,
        trio.open_nursery() as nursery,
    ):
        events = [
            (0.0, DiscoveryEvent(EventKind.SEEN, "c", found)),
            (0.0, DiscoveryEvent(EventKind.GONE, "c")),
        ]
        nursery.start_soon(partial(run_discovery, m, feed(events), ttl=5.0))
        await trio.sleep(30)
        assert ("127.0.0.1:1",) == m.nodes()
        assert NodeStatus.OFFLINE == m.snapshot("127.0.0.1:1").status
        nursery.cancel_scope.cancel()


class FakeInfo:
    def __init__(self, port: int) -> None:
        self.port = port
        self.properties = {b"id": b"fake"}

    def parsed_addresses(self) -> list[str]:
        return ["127.0.0.1"]


class FakeZeroconf:
    """Stands in for zeroconf.Zeroconf: resolves names without any network."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.closed = False

    def get_service_info(self, type_: str, name: str, timeout: int) -> FakeInfo | None:
        return None if name.startswith("unresolvable") else FakeInfo(self.port)

    def close(self) -> None:
        self.closed = True


class FakeBrowser:
    """Calls the listener from another thread, as zeroconf's browser does."""

    def __init__(self, zc: Any, type_: str, listener: Any) -> None:
        def announce() -> None:
            listener.add_service(zc, type_, "unresolvable._ollama._tcp.local.")
            listener.add_service(zc, type_, "a._ollama._tcp.local.")
            listener.update_service(zc, type_, "a._ollama._tcp.local.")
            listener.remove_service(zc, type_, "a._ollama._tcp.local.")

        self.thread = threading.Thread(target=announce)
        self.thread.start()
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        self.thread.join()


async def test_zeroconf_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    """The zeroconf listener's thread callbacks become trio discovery events."""
    monkeypatch.setattr(zeroconf, "ServiceBrowser", FakeBrowser)
    zc = FakeZeroconf(11434)
    got = []
    with trio.fail_after(10):
        async with aclosing(mdns_events(zeroconf=zc)) as events:
            async for event in events:
                got.append(event)
                if len(got) == 3:
                    break
    assert [EventKind.SEEN, EventKind.SEEN, EventKind.GONE] == [e.kind for e in got]
    assert got[0].node is not None
    assert "127.0.0.1:11434" == got[0].node.target.node
    assert not zc.closed  # not ours to close


def test_mdns_flag_without_zeroconf(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--mdns without the extra: exit 2 naming the extra."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "zeroconf" else real(name, *a),
    )
    assert 2 == main(["monitor", "--mdns"], out=io.StringIO())
    assert "pip install 'nodefsm[mdns]'" in capsys.readouterr().err
