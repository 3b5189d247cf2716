"""The demo: a scenario played in real time against fake nodes on loopback.

Each scenario node is a :class:`~nodefsm.testing.FakeNode` behind a
:class:`~nodefsm.testing.FaultProxy`; the monitor watches the proxies. A
conductor applies the scenario's faults on its timeline (``down`` closes the
proxy's listener so connections are refused; ``hang`` black-holes; ``slow``
adds latency; ``status``, ``bad_json`` and ``overloaded`` switch the fake
node). The report is the simulator's, so the two can be compared.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import attrs
import trio

from ._engine import TransitionRecord
from ._monitor import RECONNECT_POLICY
from ._proxy import FaultProxy, ProxyMode
from ._run import Output
from ._scenario import Fault, Report, Scenario, evaluate
from ._sim import POLICIES
from .exceptions import ConfigurationError
from .testing import FakeNode
from .testing import Fault as NodeFault

__all__ = ["run_demo", "scaled"]


def scaled(scenario: Scenario, factor: float) -> Scenario:
    """The scenario with every time multiplied by ``factor`` (for quick runs)."""
    if factor == 1.0:
        return scenario
    faults = tuple(
        attrs.evolve(
            f,
            at=f.at * factor,
            until=None if f.until is None else f.until * factor,
            delay=f.delay * factor,
            period=f.period * factor,
        )
        for f in scenario.faults
    )
    exps = tuple(
        attrs.evolve(
            e,
            within=None if e.within is None else e.within * factor,
            window=None
            if e.window is None
            else (e.window[0] * factor, e.window[1] * factor),
        )
        for e in scenario.expectations
    )
    monitor = dict(scenario.monitor)
    if "interval" in monitor:
        monitor["interval"] = monitor["interval"] * factor
    retry = dict(monitor.get("retry", {}))
    retry["base"] = retry.get("base", RECONNECT_POLICY.base) * factor
    retry["cap"] = retry.get("cap", RECONNECT_POLICY.cap) * factor
    monitor["retry"] = retry
    return attrs.evolve(
        scenario,
        duration=scenario.duration * factor,
        faults=faults,
        expectations=exps,
        monitor=monitor,
    )


async def _apply(fault: Fault | None, node: FakeNode, proxy: FaultProxy) -> None:
    """Make ``node`` and ``proxy`` behave as ``fault`` says (None: healthy)."""
    proxy.faults.clear()
    node.fault = NodeFault.none()
    kind = fault.kind if fault is not None else None
    if kind in ("down", "flap"):
        await proxy.refuse()
        return
    await proxy.accept()
    if fault is None:
        return
    if kind == "hang":
        proxy.faults.mode = ProxyMode.BLACKHOLE
    elif kind == "reset":
        proxy.faults.mode = ProxyMode.RESET
    elif kind == "slow":
        proxy.faults.downstream.latency = fault.delay
    elif kind == "loss":
        proxy.faults.loss = fault.loss
    elif kind == "status":
        node.fault = NodeFault.http_status(fault.status, retry_after=fault.retry_after)
    elif kind == "bad_json":
        node.fault = NodeFault.bad_json()
    elif kind == "overloaded":
        node.fault = NodeFault.overloaded()


async def run_demo(
    scenario: Scenario,
    *,
    output: Output,
    seed: int | None = None,
    on_record: Callable[[TransitionRecord], None] | None = None,
    tick: float = 0.05,
) -> Report:
    """Play ``scenario`` in real time on loopback; return the report.

    Raises:
        ConfigurationError: the scenario has faults only the simulator can play.
    """
    from ._run import run_monitor

    if not scenario.realtime:
        raise ConfigurationError(
            f"scenario {scenario.name!r} is simulation-only (realtime = false); "
            f"run it with: nodefsm simulate {scenario.name}"
        )
    seed = scenario.seed if seed is None else seed
    rng = random.Random(seed)
    config = POLICIES["nodefsm"](scenario)
    records: list[TransitionRecord] = []
    async with trio.open_nursery() as nursery:
        nodes: dict[str, FakeNode] = {}
        proxies: dict[str, FaultProxy] = {}
        for name in scenario.nodes:
            node = FakeNode(node_id=name)
            await node.start(nursery)
            proxy = FaultProxy(
                "127.0.0.1", node.port, rng=random.Random(rng.getrandbits(64))
            )
            await proxy.start(nursery)
            nodes[name], proxies[name] = node, proxy
        ids = {name: proxies[name].node for name in scenario.nodes}
        output.labels = {node: name for name, node in ids.items()}
        if not output.json_mode:
            legend = ", ".join(f"{name} = {ids[name]}" for name in scenario.nodes)
            output.out.write(
                f"nodefsm demo {scenario.name}: {scenario.description}\nnodes: {legend}\n"
            )
            output.out.flush()
        start = trio.current_time()

        async def conduct() -> None:
            current: dict[str, Fault | None] = dict.fromkeys(scenario.nodes)
            while True:
                at = trio.current_time() - start
                for name in scenario.nodes:
                    fault = scenario.active_fault(name, at)
                    if fault is not current[name]:
                        current[name] = fault
                        await _apply(fault, nodes[name], proxies[name])
                await trio.sleep(tick)

        def keep(record: TransitionRecord) -> None:
            records.append(record)
            if on_record is not None:
                on_record(record)

        nursery.start_soon(conduct)
        monitor = await run_monitor(
            [proxies[n].url for n in scenario.nodes],
            config=config,
            output=output,
            duration=scenario.duration,
            rng=random.Random(seed),
            handle_signals=False,
            title=f"nodefsm demo: {scenario.name} - {scenario.description}",
            on_record=keep,
        )
        epoch_start = monitor.now() - (trio.current_time() - start)
        probes = monitor.probes_sent
        nursery.cancel_scope.cancel()
    report = evaluate(
        scenario,
        records,
        ids=ids,
        start=epoch_start,
        probes=probes,
        policy="nodefsm",
        seed=seed,
    )
    return report
