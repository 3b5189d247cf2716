"""nodefsm benchmarks: every figure is a ratio to a baseline measured in the same run.

    .venv/bin/python benchmarks/run.py            # or: make bench

Machines here are shared and noisy, so absolute times are printed only for
context; the ratios are what to compare between versions.
"""

from __future__ import annotations

import errno
import gc
import random
import sys
import time
import tracemalloc
from collections.abc import Callable

import httpx

from nodefsm import Engine, GuardContext, NodeEvent, classify
from nodefsm._scenario import load_scenario_text
from nodefsm._sim import simulate


def best_of(fn: Callable[[], object], *, repeat: int = 5, number: int = 2000) -> float:
    """Seconds per call: the best of `repeat` batches of `number` calls."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def refused_chain() -> Exception:
    group = ExceptionGroup(
        "all attempts", [ConnectionRefusedError(errno.ECONNREFUSED, "refused")]
    )
    middle = OSError("all attempts to connect to 10.0.0.5:11434 failed")
    middle.__cause__ = group
    outer = httpx.ConnectError("all attempts to connect")
    outer.__cause__ = middle
    return outer


def seed_substring_classifier(err: BaseException) -> str:
    """The Go design's ErrorCategoryFromError: substring matching on the text."""
    text = str(err)
    if "timeout" in text or "deadline exceeded" in text:
        return "timeout"
    if "connection refused" in text:
        return "connection_refused"
    if "network is unreachable" in text or "no route to host" in text:
        return "network_temporary"
    if "no such host" in text or "cannot resolve" in text or "lookup" in text:
        return "name_resolution"
    if "write:" in text or "send:" in text:
        return "network_send"
    if "read:" in text or "recv:" in text:
        return "network_receive"
    return "unknown"


def bench_classify() -> tuple[str, float, str]:
    exc = refused_chain()
    assert "connection_refused" == classify(exc).category.value
    assert "unknown" == seed_substring_classifier(exc)  # the seed gets this one wrong
    ours = best_of(lambda: classify(exc))
    base = best_of(lambda: seed_substring_classifier(exc))
    return (
        "classify(httpx refused chain) vs the seed's substring match",
        ours / base,
        f"{ours * 1e6:.1f} us vs {base * 1e6:.2f} us",
    )


def bench_fire() -> tuple[str, float, str]:
    engine = Engine("node_status")
    engine.add("n")
    ctx = GuardContext()
    table = {("online", "probe_succeeded"): "online"}
    state = {"n": "online"}

    def ours() -> None:
        engine.fire("n", NodeEvent.PROBE_SUCCEEDED, now=0.0, ctx=ctx)

    engine.fire("n", NodeEvent.PROBE_SUCCEEDED, now=0.0, ctx=ctx)  # starting -> online

    def base() -> None:
        state["n"] = table[(state["n"], "probe_succeeded")]

    a, b = best_of(ours), best_of(base)
    return (
        "Engine.fire (guards, record) vs a dict-table FSM step",
        a / b,
        f"{a * 1e6:.1f} us vs {b * 1e9:.0f} ns",
    )


def bench_memory(n: int = 2000) -> tuple[str, float, str]:
    def measure(build: Callable[[], object]) -> int:
        gc.collect()
        tracemalloc.start()
        keep = build()
        size = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        del keep
        return size

    def shared() -> object:
        engine = Engine("node_status")
        for i in range(n):
            engine.add(f"node-{i}:11434")
        return engine

    def per_node() -> object:
        engines = []
        for i in range(n // 10):  # 10 x fewer, scaled below
            e = Engine("node_status")
            e.add(f"node-{i}:11434")
            engines.append(e)
        return engines

    s = measure(shared)
    p = measure(per_node) * 10
    return (
        f"memory: one shared Machine, {n} nodes vs one Machine per node",
        s / p,
        f"{s / n / 1024:.1f} KiB/node vs {p / n / 1024:.1f} KiB/node",
    )


def bench_simulation(nodes: int = 100, hours: float = 1.0) -> tuple[str, float, str]:
    scenario = load_scenario_text(
        f"""
[scenario]
name = "bench"
duration = {hours * 3600}
realtime = false
[cluster]
nodes = {nodes}
[monitor]
interval = 5.0
[[fault]]
at = 600.0
until = 900.0
nodes = ["node-1", "node-2", "node-3"]
kind = "down"
[[fault]]
at = 1200.0
until = 1500.0
nodes = ["node-4"]
kind = "hang"
"""
    )
    start = time.perf_counter()
    result = simulate(scenario)
    wall = time.perf_counter() - start
    return (
        f"simulate: {nodes} nodes x {hours:g} h of virtual time, speed-up over real time",
        scenario.duration / wall,
        f"{wall:.1f} s wall, {result.report.probes} probes ({result.report.probes / wall:.0f} probes/s)",
    )


def main() -> int:
    random.seed(0)
    print(f"nodefsm benchmarks (python {sys.version.split()[0]})")
    print(f"{'benchmark':<72} {'ratio':>10}  detail")
    for bench in (bench_classify, bench_fire, bench_memory, bench_simulation):
        name, ratio, detail = bench()
        print(f"{name:<72} {ratio:>10.2f}  {detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
