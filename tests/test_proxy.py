"""The fault-injecting proxy, each fault on real loopback sockets."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import trio
import trio.testing

from nodefsm import Category, classify
from nodefsm.testing import FakeNode, FaultProxy, ProxyMode, fake_node


@asynccontextmanager
async def proxied() -> AsyncIterator[tuple[FakeNode, FaultProxy]]:
    async with fake_node() as node, trio.open_nursery() as nursery:
        proxy = FaultProxy("127.0.0.1", node.port, rng=random.Random(1))
        await proxy.start(nursery)
        yield node, proxy
        await proxy.refuse()
        nursery.cancel_scope.cancel()


async def get(url: str, timeout: float = 5.0) -> httpx.Response | Exception:
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            return await client.get(url + "/api/version")
    except Exception as exc:
        return exc


async def test_transparent_by_default() -> None:
    """With no fault the proxy forwards both ways."""
    async with proxied() as (node, proxy):
        response = await get(proxy.url)
        assert isinstance(response, httpx.Response)
        assert {"version": "0.5.7"} == response.json()
        assert 1 == node.requests
        assert f"127.0.0.1:{proxy.port}" == proxy.node


async def test_refuse_and_accept_keep_the_port() -> None:
    """refuse() closes the listener (ECONNREFUSED); accept() reopens the same port."""
    async with proxied() as (_node, proxy):
        port = proxy.port
        await proxy.refuse()
        assert proxy.refusing
        assert Category.CONNECTION_REFUSED == classify(await get(proxy.url)).category
        await proxy.accept()
        assert port == proxy.port
        assert isinstance(await get(proxy.url), httpx.Response)


async def test_blackhole_times_out(autojump_clock: trio.testing.MockClock) -> None:
    """Black hole: the connection is accepted and never answered."""
    async with proxied() as (node, proxy):
        proxy.faults.mode = ProxyMode.BLACKHOLE
        assert Category.TIMEOUT == classify(await get(proxy.url, timeout=2.0)).category
        assert 0 == node.requests


async def test_reset() -> None:
    """Reset: the client sees a connection reset."""
    async with proxied() as (_, proxy):
        proxy.faults.mode = ProxyMode.RESET
        c = classify(await get(proxy.url))
        assert c.category in (Category.NETWORK_RECEIVE, Category.NETWORK_SEND)


async def test_latency_per_direction(autojump_clock: trio.testing.MockClock) -> None:
    """Downstream latency delays the answer by that much (virtual time)."""
    async with proxied() as (_, proxy):
        proxy.faults.downstream.latency = 3.0
        start = trio.current_time()
        assert isinstance(await get(proxy.url), httpx.Response)
        assert 3.0 <= trio.current_time() - start < 3.5
        proxy.faults.clear()
        proxy.faults.upstream.latency = 1.0
        proxy.faults.upstream.jitter = 0.5
        start = trio.current_time()
        assert isinstance(await get(proxy.url), httpx.Response)
        assert 1.0 <= trio.current_time() - start <= 1.6


async def test_slow_body_rate(autojump_clock: trio.testing.MockClock) -> None:
    """A byte rate makes the transfer take len/rate seconds."""
    async with proxied() as (_, proxy):
        proxy.faults.downstream.rate = 50.0  # bytes per second
        start = trio.current_time()
        response = await get(proxy.url, timeout=60)
        assert isinstance(response, httpx.Response)
        assert trio.current_time() - start >= len(response.content) / 50.0


async def test_cut_after_bytes() -> None:
    """Cut after N bytes: the answer is truncated and the client sees it."""
    async with proxied() as (_, proxy):
        proxy.faults.downstream.cut_after = 40
        c = classify(await get(proxy.url))
        assert c.category in (Category.NETWORK_RECEIVE, Category.PROTOCOL_VIOLATION)


async def test_loss_is_per_connection(autojump_clock: trio.testing.MockClock) -> None:
    """With loss 1.0 every connection is black-holed and counted as lost."""
    async with proxied() as (_, proxy):
        proxy.faults.loss = 1.0
        assert Category.TIMEOUT == classify(await get(proxy.url, timeout=1.0)).category
        assert 1 == proxy.lost


async def test_upstream_down_is_a_reset() -> None:
    """When the node behind the proxy is gone, the proxy resets the client."""
    async with proxied() as (node, proxy):
        await node.stop()
        c = classify(await get(proxy.url))
        assert c.category in (Category.NETWORK_RECEIVE, Category.NETWORK_SEND)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("garbage", Category.PROTOCOL_VIOLATION),
        ("wrong_fields", None),
        ("bad_json", None),
    ],
)
async def test_fake_node_faults(fault: str, expected: Category | None) -> None:
    """The fake node's own faults reach the client as documented."""
    from nodefsm.testing import Fault

    async with fake_node() as node:
        node.fault = getattr(Fault, fault)()
        result = await get(node.url)
        if expected is None:
            assert isinstance(result, httpx.Response)
            assert 200 == result.status_code
        else:
            assert expected == classify(result).category


async def test_fake_node_paths() -> None:
    """The fake node answers the Ollama paths and 404 elsewhere."""
    async with fake_node(models=("m:1",)) as node, httpx.AsyncClient() as client:
        tags = (await client.get(node.url + "/api/tags")).json()
        assert ["m:1"] == [m["name"] for m in tags["models"]]
        assert 404 == (await client.get(node.url + "/nope")).status_code
        assert {"ok": True} == (await client.get(node.url + "/")).json()
        health = (await client.get(node.url + "/api/health")).json()
        assert node.node == health["node_id"]
