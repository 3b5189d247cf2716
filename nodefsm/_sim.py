"""Deterministic simulation: the real monitor on virtual time and a fake network.

Only two things differ from production: the clock is
``trio.testing.MockClock`` (virtual time jumps whenever every task waits)
and the HTTP transport is :class:`SimTransport`, which answers from the
scenario's fault timeline instead of sockets. The monitor, machines,
policies, probes and classification are the production ones.

Determinism: the monitor's and the cluster's randomness comes from the seed
(one generator per node), the transport draws from per-node generators, and
trio's scheduler tie-break is seeded too, so the same scenario and seed give
byte-identical output.
"""

from __future__ import annotations

import errno
import json
import math
import random
import socket
from collections.abc import Callable
from typing import Any

import attrs
import httpx
import trio
import trio.testing

from ._cluster import SuspicionPolicy
from ._config import NodeThresholds
from ._configfile import config_from_data
from ._engine import TransitionRecord
from ._monitor import MonitorConfig, open_monitor
from ._probe import Probe
from ._retry import RetryPolicy
from ._scenario import Fault, Report, Scenario, evaluate
from ._spec import _Lines

__all__ = ["POLICIES", "SimTransport", "seed_policy", "simulate"]

SIM_PORT = 11434


def seed_policy(profile: str = "ollama") -> MonitorConfig:
    """The Go design's policy, for side-by-side comparison.

    A fixed 5 s timeout, a 10 s check interval with no faster re-check and
    no jitter (every node in lockstep), 3 / 5 failure thresholds, no
    recovery hysteresis (one success brings a node back), its backoff
    (10 retries, 0.1 s x1.5 up to 30 s), and no self-suspicion.
    """
    return MonitorConfig(
        interval=10.0,
        timeout=5.0,
        fast_interval=10.0,
        down_interval=10.0,
        jitter=0.0,
        probe=Probe(profile=profile),
        thresholds=NodeThresholds(degrade_after=3, offline_after=5, recover_after=1),
        reconnect_policy=RetryPolicy(),
        suspicion=SuspicionPolicy(min_nodes=1_000_000_000),
    )


def _nodefsm_policy(scenario: Scenario) -> MonitorConfig:
    data: dict[str, Any] = {"monitor": {}}
    for key, value in scenario.monitor.items():
        if isinstance(value, dict):
            data[key] = value
        else:
            data["monitor"][key] = value
    data["monitor"].setdefault("profile", scenario.profile)
    config, _ = config_from_data(data, scenario.path, _Lines(""))
    return config


#: Policy name -> config builder.
POLICIES: dict[str, Callable[[Scenario], MonitorConfig]] = {
    "nodefsm": _nodefsm_policy,
    "seed": lambda scenario: seed_policy(scenario.profile),
}


def _host(name: str) -> str:
    return f"{name}.sim"


class SimTransport(httpx.AsyncBaseTransport):
    """An httpx transport that plays a scenario's fault timeline in virtual time.

    Args:
        scenario: the scenario (nodes, latency, faults).
        seed: seeds the per-node generators (latency jitter, packet loss).
        start: ``trio.current_time()`` at the scenario's time zero.
    """

    def __init__(self, scenario: Scenario, seed: int, start: float) -> None:
        self.scenario = scenario
        self.start = start
        self.requests = 0
        self._rngs = {n: random.Random(f"{seed}:{n}") for n in scenario.nodes}

    def active(self, node: str, at: float) -> Fault | None:
        """The fault acting on ``node`` at scenario time ``at`` (see Scenario.active_fault)."""
        return self.scenario.active_fault(node, at)

    def _answer(
        self, request: httpx.Request, node: str, overloaded: bool
    ) -> httpx.Response:
        path = request.url.path
        if path == "/api/version":
            data: dict[str, Any] = {"version": "0.5.7"}
        elif path == "/api/ps":
            data = {"models": [{"name": "llama3.2:1b", "size_vram": 1_500_000_000}]}
        elif path == "/api/health":
            data = {
                "node_id": node,
                "status": "online",
                "cpu_usage_percent": 95.0 if overloaded else 12.0,
                "memory_usage_mb": 4096.0,
                "active_requests": 20 if overloaded else 1,
                "queued_requests": 5 if overloaded else 0,
            }
        else:
            data = {"ok": True}
        return httpx.Response(200, content=json.dumps(data).encode(), request=request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer (or fail) as the timeline says; waiting happens in virtual time."""
        self.requests += 1
        node = request.url.host.removesuffix(".sim")
        rng = self._rngs[node]
        await trio.sleep(self.scenario.latency * rng.uniform(0.8, 1.2))
        at = trio.current_time() - self.start
        fault = self.active(node, at)
        kind = fault.kind if fault is not None else None
        if kind in ("down", "flap"):
            raise httpx.ConnectError(
                "all attempts to connect failed"
            ) from ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
        if kind == "monitor_network":
            raise httpx.ConnectError("network unreachable") from OSError(
                errno.ENETUNREACH, "Network is unreachable"
            )
        if kind == "dns":
            raise httpx.ConnectError(
                "[Errno -2] Name or service not known"
            ) from socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if kind == "hang" or (
            kind == "loss" and fault is not None and rng.random() < fault.loss
        ):
            await trio.sleep_forever()
        if kind == "reset":
            raise httpx.ReadError("connection reset") from ConnectionResetError(
                errno.ECONNRESET, "Connection reset by peer"
            )
        if kind == "slow" and fault is not None:
            await trio.sleep(fault.delay)
        if kind == "status" and fault is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return httpx.Response(
                fault.status,
                headers=headers,
                content=b'{"error":"busy"}',
                request=request,
            )
        if kind == "bad_json":
            return httpx.Response(200, content=b'{"version": "0.5', request=request)
        return self._answer(request, node, kind == "overloaded")


@attrs.frozen
class SimulationResult:
    """What a simulation produced."""

    records: tuple[TransitionRecord, ...]
    report: Report
    ids: dict[str, str]


def _seed_trio_scheduler(seed: int) -> None:
    # trio breaks scheduling ties with a module-level Random (it reverses each
    # batch of runnable tasks half of the time). Seeding it makes a virtual-
    # time run reproducible. This reaches into trio's internals on purpose;
    # the simulation test fails loudly if trio ever changes it.
    run_module = trio._core._run
    rng = getattr(run_module, "_r", None)
    if isinstance(rng, random.Random):
        rng.seed(seed)


def simulate(
    scenario: Scenario,
    *,
    seed: int | None = None,
    policy: str = "nodefsm",
    on_record: Callable[[TransitionRecord], None] | None = None,
) -> SimulationResult:
    """Run ``scenario`` in virtual time; return its records and report.

    Args:
        scenario: the scenario.
        seed: the seed (default: the scenario's).
        policy: ``nodefsm`` (the scenario's monitor settings) or ``seed``
            (the Go design's policy).
        on_record: called with each transition record as it happens.
    """
    seed = scenario.seed if seed is None else seed
    config = POLICIES[policy](scenario)
    ids = {n: f"{_host(n)}:{SIM_PORT}" for n in scenario.nodes}
    records: list[TransitionRecord] = []
    probes = 0

    async def main() -> None:
        nonlocal probes
        start = trio.current_time()
        transport = SimTransport(scenario, seed, start)
        async with httpx.AsyncClient(transport=transport, timeout=None) as client:
            urls = [f"http://{_host(n)}:{SIM_PORT}" for n in scenario.nodes]
            async with open_monitor(
                urls, config=config, client=client, rng=random.Random(seed), epoch=0.0
            ) as monitor:
                sub = monitor.subscribe(buffer=math.inf)

                async def collect() -> None:
                    async for r in sub:
                        records.append(r)
                        if on_record is not None:
                            on_record(r)

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(collect)
                    await trio.sleep(scenario.duration)
                    await trio.testing.wait_all_tasks_blocked()
                    nursery.cancel_scope.cancel()
                probes = monitor.probes_sent

    _seed_trio_scheduler(seed)
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    report = evaluate(
        scenario, records, ids=ids, start=0.0, probes=probes, policy=policy, seed=seed
    )
    return SimulationResult(records=tuple(records), report=report, ids=ids)
