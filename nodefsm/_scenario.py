"""Scenario specs: a small cluster, a timeline of faults, and expectations.

A scenario (``specs/scenarios/*.toml``) is an executable specification. The
same file runs in virtual time against a simulated transport (``nodefsm
simulate``) and in real time against fake nodes on loopback (``nodefsm
demo``)::

    [scenario]
    name = "crash"
    description = "A node crashes and comes back."
    duration = 90.0          # seconds
    realtime = true          # can also run on loopback (no DNS/monitor faults)

    [cluster]
    nodes = ["a", "b", "c"]  # or a count: nodes = 100 -> node-1 .. node-100
    profile = "ollama"       # the probe profile
    latency = 0.004          # a healthy answer's latency, seconds

    [monitor]                # MonitorConfig overrides (as in the config file)
    interval = 2.0

    [[fault]]
    label = "crash"
    at = 10.0
    nodes = ["a"]            # or "*" for every node
    kind = "down"            # see FAULT_KINDS
    until = 40.0             # healthy again (omit: until the end)

    [[expect]]
    node = "a"
    reaches = "offline"
    within = 20.0
    after = "crash"          # measured from that fault's start (default: t=0)

Expectations: ``reaches`` + ``within`` (+ ``after`` a fault label, measured
``from = "start"`` or ``"end"`` of that fault), ``never``,
``max_transitions`` within ``window = [t0, t1]`` (no flapping),
``max_reconnect_rate`` (reconnection attempts per second, cluster-wide
peak), ``self_suspicion`` (true/false).
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import attrs

from ._engine import NodeStatus, TransitionRecord
from ._spec import _Lines, toml_error_line
from .exceptions import SpecError

__all__ = [
    "FAULT_KINDS",
    "REALTIME_KINDS",
    "Expectation",
    "Fault",
    "Outcome",
    "Report",
    "Scenario",
    "builtin_scenario_names",
    "evaluate",
    "load_scenario",
    "load_scenario_text",
]

#: Every fault kind, and what it does to the affected nodes.
FAULT_KINDS: Mapping[str, str] = {
    "down": "the node is down: connections are refused",
    "hang": "accepts, never answers (black hole)",
    "slow": "answers after `delay` seconds",
    "reset": "resets the connection after the request",
    "status": "answers every request with `status` (and `retry_after`)",
    "bad_json": "answers 200 with a body that is not JSON",
    "overloaded": "answers, reporting 95 % CPU and 20 active requests (ollama-cluster)",
    "loss": "each probe is lost (black-holed) with probability `loss`",
    "flap": "alternates down/up every `period` seconds",
    "dns": "the node's name does not resolve (simulation only)",
    "monitor_network": "the monitor's own network is down: unreachable (simulation only)",
}
#: Kinds the loopback demo can reproduce with fake nodes and the fault proxy.
REALTIME_KINDS = frozenset(FAULT_KINDS) - {"dns", "monitor_network"}

_SCENARIO_KEYS = {"name", "description", "duration", "realtime", "seed"}
_CLUSTER_KEYS = {"nodes", "profile", "latency"}
_FAULT_KEYS = {
    "label",
    "at",
    "until",
    "nodes",
    "node",
    "kind",
    "delay",
    "status",
    "retry_after",
    "loss",
    "period",
}
_EXPECT_KEYS = {
    "node",
    "reaches",
    "within",
    "after",
    "from",
    "never",
    "max_transitions",
    "window",
    "max_reconnect_rate",
    "self_suspicion",
    "description",
}


@attrs.frozen(kw_only=True)
class Fault:
    """One fault on the timeline (times in seconds from the start)."""

    label: str
    at: float
    until: float | None
    nodes: tuple[str, ...]
    kind: str
    delay: float = 0.0
    status: int = 503
    retry_after: str | None = None
    loss: float = 0.0
    period: float = 5.0
    line: int = 0


@attrs.frozen(kw_only=True)
class Expectation:
    """One expectation; exactly one of the check fields is set."""

    description: str
    node: str | None = None
    reaches: str | None = None
    within: float | None = None
    after: str | None = None
    since_end: bool = False
    never: str | None = None
    max_transitions: int | None = None
    window: tuple[float, float] | None = None
    max_reconnect_rate: float | None = None
    self_suspicion: bool | None = None
    line: int = 0


@attrs.frozen(kw_only=True)
class Scenario:
    """A validated scenario."""

    name: str
    description: str
    duration: float
    realtime: bool
    seed: int
    nodes: tuple[str, ...]
    profile: str
    latency: float
    monitor: Mapping[str, Any]
    faults: tuple[Fault, ...]
    expectations: tuple[Expectation, ...]
    path: str = "<string>"

    def fault(self, label: str) -> Fault:
        """The fault called ``label``."""
        return next(f for f in self.faults if f.label == label)

    def active_fault(self, node: str, at: float) -> Fault | None:
        """The fault acting on ``node`` at scenario time ``at``.

        The latest started fault wins; a ``flap`` is active only in its
        "down" half-periods. The simulator and the demo both play this.
        """
        current = None
        for f in self.faults:
            end = f.until if f.until is not None else math.inf
            if node in f.nodes and f.at <= at < end:
                current = f
        if current is not None and current.kind == "flap":
            phase = int((at - current.at) / current.period) % 2
            return current if phase == 0 else None
        return current


def _num(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def load_scenario_text(text: str, *, path: str = "<string>") -> Scenario:
    """Parse and validate a scenario.

    Raises:
        SpecError: one ``file:line: ...`` line per problem.
    """
    problems: list[str] = []

    def bad(line: int, message: str) -> None:
        problems.append(f"{path}:{line}: {message}")

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = toml_error_line(exc, text)
        raise SpecError([f"{path}:{line}: invalid TOML: {exc}"]) from None
    lines = _Lines(text)
    for key in data.keys() - {"scenario", "cluster", "monitor", "fault", "expect"}:
        bad(
            lines.at(key),
            f"unknown top-level key {key!r}; known: cluster, expect, fault, monitor, scenario",
        )

    head = data.get("scenario", {})
    for key in head.keys() - _SCENARIO_KEYS:
        bad(
            lines.at("scenario", key),
            f"unknown key {key!r} in [scenario]; known: {', '.join(sorted(_SCENARIO_KEYS))}",
        )
    name = head.get("name")
    if not isinstance(name, str) or not re.match(r"^[a-z0-9][a-z0-9_-]*$", name):
        bad(
            lines.at("scenario", "name"),
            f"name {name!r} must be a lower-case identifier (letters, digits, - and _)",
        )
        name = "invalid"
    duration = head.get("duration")
    if not _num(duration) or duration <= 0:
        bad(
            lines.at("scenario", "duration"),
            f"duration {duration!r} must be seconds > 0",
        )
        duration = 1.0
    realtime = head.get("realtime", True)
    seed = head.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        bad(lines.at("scenario", "seed"), f"seed {seed!r} must be an integer")
        seed = 0

    cluster = data.get("cluster", {})
    for key in cluster.keys() - _CLUSTER_KEYS:
        bad(
            lines.at("cluster", key),
            f"unknown key {key!r} in [cluster]; known: {', '.join(sorted(_CLUSTER_KEYS))}",
        )
    raw_nodes = cluster.get("nodes")
    nodes: list[str]
    if (
        isinstance(raw_nodes, int)
        and not isinstance(raw_nodes, bool)
        and 1 <= raw_nodes <= 10_000
    ):
        nodes = [f"node-{i}" for i in range(1, raw_nodes + 1)]
    elif (
        isinstance(raw_nodes, list)
        and raw_nodes
        and all(
            isinstance(n, str) and re.match(r"^[a-z0-9][a-z0-9-]*$", n)
            for n in raw_nodes
        )
    ):
        nodes = list(raw_nodes)
        if len(set(nodes)) != len(nodes):
            bad(lines.at("cluster", "nodes"), "node names must be distinct")
    else:
        bad(
            lines.at("cluster", "nodes"),
            "nodes must be a count (1..10000) or a list of lower-case names",
        )
        nodes = []
    profile = cluster.get("profile", "ollama")
    if profile not in ("ollama", "ollama-cluster", "http"):
        bad(
            lines.at("cluster", "profile"),
            f"profile {profile!r}; use ollama, ollama-cluster or http",
        )
    latency = cluster.get("latency", 0.004)
    if not _num(latency) or latency < 0:
        bad(lines.at("cluster", "latency"), f"latency {latency!r} must be seconds >= 0")
        latency = 0.004
    monitor = data.get("monitor", {})
    if not isinstance(monitor, dict):
        bad(lines.at("monitor"), "[monitor] must be a table")
        monitor = {}

    faults: list[Fault] = []
    for i, raw in enumerate(data.get("fault", [])):
        fault = _fault(raw, i, lines, bad, nodes, float(duration))
        if fault is not None:
            faults.append(fault)
    labels = [f.label for f in faults]
    for f in faults:
        if labels.count(f.label) > 1:
            bad(
                f.line,
                f"fault label {f.label!r} is used twice; labels must be distinct",
            )
    if not realtime is True:  # noqa: E714 - TOML may hold any type here
        if realtime is not False:
            bad(lines.at("scenario", "realtime"), "realtime must be true or false")
        realtime = False
    elif any(f.kind not in REALTIME_KINDS for f in faults):
        kinds = sorted({f.kind for f in faults} - REALTIME_KINDS)
        bad(
            lines.at("scenario", "realtime"),
            f"faults {', '.join(kinds)} cannot run on loopback; set realtime = false",
        )

    expectations: list[Expectation] = []
    for i, raw in enumerate(data.get("expect", [])):
        exp = _expect(raw, i, lines, bad, nodes, set(labels))
        if exp is not None:
            expectations.append(exp)
    if problems:
        raise SpecError(problems)
    return Scenario(
        name=name,
        description=str(head.get("description", "")),
        duration=float(duration),
        realtime=bool(realtime),
        seed=seed,
        nodes=tuple(nodes),
        profile=profile,
        latency=float(latency),
        monitor=dict(monitor),
        faults=tuple(sorted(faults, key=lambda f: f.at)),
        expectations=tuple(expectations),
        path=path,
    )


def _fault(
    raw: Any, i: int, lines: _Lines, bad: Any, nodes: list[str], duration: float
) -> Fault | None:
    line = lines.at("fault", None, i)
    if not isinstance(raw, dict):
        bad(line, "[[fault]] must be a table")
        return None
    ok = True
    for key in raw.keys() - _FAULT_KEYS:
        bad(
            lines.at("fault", key, i),
            f"unknown key {key!r} in [[fault]]; known: {', '.join(sorted(_FAULT_KEYS))}",
        )
        ok = False
    kind: Any = raw.get("kind")
    if kind not in FAULT_KINDS:
        bad(
            lines.at("fault", "kind", i),
            f"kind {kind!r}; known: {', '.join(FAULT_KINDS)}",
        )
        ok = False
    at: Any = raw.get("at")
    if not _num(at) or not 0 <= at <= duration:
        bad(
            lines.at("fault", "at", i),
            f"at {at!r} must be seconds within [0, duration={duration}]",
        )
        ok = False
    until: Any = raw.get("until")
    if until is not None and (not _num(until) or not _num(at) or until <= at):
        bad(
            lines.at("fault", "until", i),
            f"until {until!r} must be seconds after at={at!r}",
        )
        ok = False
    targets = raw.get(
        "nodes", raw.get("node", "*" if kind == "monitor_network" else None)
    )
    if targets == "*":
        targets = list(nodes)
    if isinstance(targets, str):
        targets = [targets]
    if not isinstance(targets, list) or not targets:
        bad(
            lines.at("fault", "nodes", i), 'nodes must name the affected nodes (or "*")'
        )
        ok = False
        targets = []
    for t in targets:
        if t not in nodes:
            bad(
                lines.at("fault", "nodes", i),
                f"unknown node {t!r}; known: {', '.join(nodes[:8])}{' ...' if len(nodes) > 8 else ''}",
            )
            ok = False
    params: dict[str, Any] = {}
    for key, check, rule in (
        ("delay", lambda v: _num(v) and v >= 0, "seconds >= 0"),
        (
            "status",
            lambda v: isinstance(v, int) and 100 <= v <= 599,
            "an HTTP status 100..599",
        ),
        (
            "retry_after",
            lambda v: isinstance(v, str),
            "a string (seconds or an HTTP date)",
        ),
        ("loss", lambda v: _num(v) and 0 <= v <= 1, "a probability in [0, 1]"),
        ("period", lambda v: _num(v) and v > 0, "seconds > 0"),
    ):
        if key in raw:
            if not check(raw[key]):
                bad(lines.at("fault", key, i), f"{key} {raw[key]!r} must be {rule}")
                ok = False
            else:
                params[key] = raw[key]
    if kind == "slow" and "delay" not in raw:
        bad(line, "a slow fault needs delay = <seconds>")
        ok = False
    if kind == "loss" and "loss" not in raw:
        bad(line, "a loss fault needs loss = <probability>")
        ok = False
    label = raw.get("label", f"fault-{i + 1}")
    if not isinstance(label, str) or not label:
        bad(lines.at("fault", "label", i), "label must be a non-empty string")
        ok = False
    if not ok:
        return None
    return Fault(
        label=label,
        at=float(at),
        until=float(until) if until is not None else None,
        nodes=tuple(targets),
        kind=kind,
        line=line,
        **params,
    )


def _expect(
    raw: Any, i: int, lines: _Lines, bad: Any, nodes: list[str], labels: set[str]
) -> Expectation | None:
    line = lines.at("expect", None, i)
    if not isinstance(raw, dict):
        bad(line, "[[expect]] must be a table")
        return None
    ok = True
    for key in raw.keys() - _EXPECT_KEYS:
        bad(
            lines.at("expect", key, i),
            f"unknown key {key!r} in [[expect]]; known: {', '.join(sorted(_EXPECT_KEYS))}",
        )
        ok = False
    checks = [
        k
        for k in (
            "reaches",
            "never",
            "max_transitions",
            "max_reconnect_rate",
            "self_suspicion",
        )
        if k in raw
    ]
    if len(checks) != 1:
        bad(
            line,
            f"an [[expect]] needs exactly one of reaches, never, max_transitions, max_reconnect_rate, self_suspicion (got {', '.join(checks) or 'none'})",
        )
        return None
    node = raw.get("node")
    if node is not None and node not in nodes:
        bad(lines.at("expect", "node", i), f"unknown node {node!r}")
        ok = False
    states = {s.value for s in NodeStatus}
    for key in ("reaches", "never"):
        if key in raw and raw[key] not in states:
            bad(
                lines.at("expect", key, i),
                f"{key} {raw[key]!r} is not a node status; known: {', '.join(sorted(states))}",
            )
            ok = False
    if checks[0] in ("reaches", "never", "max_transitions") and node is None:
        bad(line, f"{checks[0]} needs node = <name>")
        ok = False
    if "reaches" in raw and (not _num(raw.get("within")) or raw["within"] <= 0):
        bad(lines.at("expect", "within", i), "reaches needs within = <seconds > 0>")
        ok = False
    if raw.get("from", "start") not in ("start", "end") or (
        "from" in raw and "after" not in raw
    ):
        bad(
            lines.at("expect", "from", i),
            'from must be "start" or "end" of the fault named by after',
        )
        ok = False
    if "after" in raw and raw["after"] not in labels:
        bad(
            lines.at("expect", "after", i),
            f"after {raw['after']!r} names no fault; labels: {', '.join(sorted(labels))}",
        )
        ok = False
    window = raw.get("window")
    if window is not None and not (
        isinstance(window, list)
        and len(window) == 2
        and all(_num(w) for w in window)
        and window[0] < window[1]
    ):
        bad(
            lines.at("expect", "window", i),
            "window must be [start, end] seconds with start < end",
        )
        ok = False
    if "max_transitions" in raw and (
        not isinstance(raw["max_transitions"], int) or raw["max_transitions"] < 0
    ):
        bad(
            lines.at("expect", "max_transitions", i),
            "max_transitions must be an integer >= 0",
        )
        ok = False
    if "max_reconnect_rate" in raw and (
        not _num(raw["max_reconnect_rate"]) or raw["max_reconnect_rate"] <= 0
    ):
        bad(
            lines.at("expect", "max_reconnect_rate", i),
            "max_reconnect_rate must be attempts per second > 0",
        )
        ok = False
    if "self_suspicion" in raw and not isinstance(raw["self_suspicion"], bool):
        bad(
            lines.at("expect", "self_suspicion", i),
            "self_suspicion must be true or false",
        )
        ok = False
    if not ok:
        return None
    return Expectation(
        description=str(raw.get("description", "")),
        node=node,
        reaches=raw.get("reaches"),
        within=raw.get("within"),
        after=raw.get("after"),
        since_end=raw.get("from") == "end",
        never=raw.get("never"),
        max_transitions=raw.get("max_transitions"),
        window=(float(window[0]), float(window[1])) if window else None,
        max_reconnect_rate=raw.get("max_reconnect_rate"),
        self_suspicion=raw.get("self_suspicion"),
        line=line,
    )


def _scenario_root() -> Path:
    packaged = resources.files("nodefsm").joinpath("specs")
    if packaged.is_dir():
        return Path(str(packaged)) / "scenarios"
    return Path(__file__).resolve().parent.parent / "specs" / "scenarios"


def builtin_scenario_names() -> tuple[str, ...]:
    """Names of the built-in scenarios."""
    return tuple(sorted(p.stem for p in _scenario_root().glob("*.toml")))


def load_scenario(source: str | Path) -> Scenario:
    """Load a scenario by built-in name or from a file.

    Raises:
        SpecError: missing, unreadable or invalid.
    """
    path = Path(source)
    shown = str(source)
    if isinstance(source, str) and source in builtin_scenario_names():
        path = _scenario_root() / f"{source}.toml"
        shown = f"specs/scenarios/{source}.toml"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(
            [
                f"{source}:1: no such scenario file or built-in; built-ins: {', '.join(builtin_scenario_names())}"
            ]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([f"{source}:1: cannot read: {exc}"]) from None
    return load_scenario_text(text, path=shown)


# ---------------------------------------------------------------------------
# Evaluation: expectations and the report, from the records of a run.


@attrs.frozen
class Outcome:
    """One expectation, met or not, with the evidence."""

    expectation: Expectation
    met: bool
    detail: str


@attrs.frozen(kw_only=True)
class FaultReport:
    """Per fault: when it was detected and when its nodes recovered."""

    label: str
    kind: str
    nodes: tuple[str, ...]
    at: float
    detected_after: float | None
    recovered_after: float | None


@attrs.frozen(kw_only=True)
class Report:
    """What a run measured."""

    scenario: str
    seed: int
    policy: str
    duration: float
    probes: int
    transitions: int
    false_transitions: int
    peak_reconnects_per_second: int
    faults: tuple[FaultReport, ...]
    outcomes: tuple[Outcome, ...]

    @property
    def ok(self) -> bool:
        """All expectations met."""
        return all(o.met for o in self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "policy": self.policy,
            "duration": self.duration,
            "probes": self.probes,
            "transitions": self.transitions,
            "false_transitions": self.false_transitions,
            "peak_reconnects_per_second": self.peak_reconnects_per_second,
            "faults": [attrs.asdict(f) for f in self.faults],
            "expectations": [
                {"line": o.expectation.line, "met": o.met, "detail": o.detail}
                for o in self.outcomes
            ],
            "ok": self.ok,
        }

    def text(self) -> str:
        """A human report."""
        out = [
            f"scenario {self.scenario} (seed {self.seed}, policy {self.policy}): {self.duration:g} s, {self.probes} probes, {self.transitions} transitions, {self.false_transitions} false"
        ]
        out.append(f"peak reconnection attempts: {self.peak_reconnects_per_second}/s")
        for f in self.faults:
            det = (
                "not detected"
                if f.detected_after is None
                else f"detected after {f.detected_after:.2f} s"
            )
            rec = (
                ""
                if f.recovered_after is None
                else f", recovered {f.recovered_after:.2f} s after it ended"
            )
            out.append(
                f"  fault {f.label} ({f.kind} on {', '.join(f.nodes[:4])}{' ...' if len(f.nodes) > 4 else ''} at {f.at:g} s): {det}{rec}"
            )
        for o in self.outcomes:
            out.append(
                f"  [{'met' if o.met else 'NOT MET'}] line {o.expectation.line}: {o.detail}"
            )
        out.append("all expectations met" if self.ok else "some expectations NOT met")
        return "\n".join(out)


_HEALTHY = {NodeStatus.ONLINE.value}


def evaluate(
    scenario: Scenario,
    records: Sequence[TransitionRecord],
    *,
    ids: Mapping[str, str],
    start: float,
    probes: int,
    policy: str,
    seed: int,
) -> Report:
    """Measure a run: per-fault detection and recovery, expectations, rates.

    Args:
        scenario: the scenario run.
        records: every transition record of the run (state changes).
        ids: scenario node name -> monitor node id.
        start: the ``ts`` of the run's time zero.
        probes: probes sent.
        policy: the policy's name, for the report.
        seed: the seed used.
    """
    names = {v: k for k, v in ids.items()}
    status = [
        r
        for r in records
        if r.machine == "node_status" and r.changed and r.node in names
    ]
    by_node: dict[str, list[TransitionRecord]] = {}
    for r in status:
        by_node.setdefault(names[r.node], []).append(r)

    def t(r: TransitionRecord) -> float:
        return r.ts - start

    def faulted(node: str, when: float) -> bool:
        for f in scenario.faults:
            if (
                node in f.nodes
                and f.at
                <= when
                <= (f.until if f.until is not None else scenario.duration)
                + RECOVERY_GRACE
            ):
                return True
        return False

    false = sum(
        1 for r in status if r.source != "starting" and not faulted(names[r.node], t(r))
    )

    fault_reports = []
    for f in scenario.faults:
        detected = [
            t(r) - f.at
            for n in f.nodes
            for r in by_node.get(n, [])
            if t(r) >= f.at and r.source in _HEALTHY
        ]
        recovered = None
        if f.until is not None:
            times = []
            for n in f.nodes:
                back = [
                    t(r) - f.until
                    for r in by_node.get(n, [])
                    if t(r) >= f.until and r.dest in _HEALTHY
                ]
                if back:
                    times.append(min(back))
            recovered = max(times) if times and len(times) == len(f.nodes) else None
        fault_reports.append(
            FaultReport(
                label=f.label,
                kind=f.kind,
                nodes=f.nodes,
                at=f.at,
                detected_after=min(detected) if detected else None,
                recovered_after=recovered,
            )
        )

    attempts = [
        int(r.ts - start)
        for r in records
        if r.machine == "reconnection" and r.trigger == "timer_fired"
    ]
    buckets: dict[int, int] = {}
    for second in attempts:
        buckets[second] = buckets.get(second, 0) + 1
    peak = max(buckets.values(), default=0)
    suspected = any(r.trigger == "self_suspicion" for r in records)

    outcomes = []
    for e in scenario.expectations:
        outcomes.append(_check(e, scenario, by_node, t, peak, suspected))
    return Report(
        scenario=scenario.name,
        seed=seed,
        policy=policy,
        duration=scenario.duration,
        probes=probes,
        transitions=len(status),
        false_transitions=false,
        peak_reconnects_per_second=peak,
        faults=tuple(fault_reports),
        outcomes=tuple(outcomes),
    )


#: After a fault ends, the recovery transitions it causes within this many
#: seconds are not counted as false transitions.
RECOVERY_GRACE = 60.0


def _check(
    e: Expectation,
    scenario: Scenario,
    by_node: Mapping[str, list[TransitionRecord]],
    t: Any,
    peak: int,
    suspected: bool,
) -> Outcome:
    if e.reaches is not None:
        assert e.node is not None
        assert e.within is not None
        origin = 0.0
        if e.after:
            fault = scenario.fault(e.after)
            end = fault.until if fault.until is not None else scenario.duration
            origin = end if e.since_end else fault.at
        hits = [
            t(r) - origin
            for r in by_node.get(e.node, [])
            if r.dest == e.reaches and t(r) >= origin
        ]
        met = bool(hits) and hits[0] <= e.within
        when = f"after {hits[0]:.2f} s" if hits else "never"
        mark = (
            f"{'the end' if e.since_end else 'the start'} of {e.after}"
            if e.after
            else "the start"
        )
        return Outcome(
            e,
            met,
            f"{e.node} reaches {e.reaches} within {e.within:g} s of {mark}: {when}",
        )
    if e.never is not None:
        assert e.node is not None
        hits = [t(r) for r in by_node.get(e.node, []) if r.dest == e.never]
        return Outcome(
            e,
            not hits,
            f"{e.node} never {e.never}: "
            + (f"reached at {hits[0]:.2f} s" if hits else "held"),
        )
    if e.max_transitions is not None:
        assert e.node is not None
        lo, hi = e.window or (0.0, scenario.duration)
        n = sum(1 for r in by_node.get(e.node, []) if lo <= t(r) <= hi)
        return Outcome(
            e,
            n <= e.max_transitions,
            f"{e.node}: {n} transitions in [{lo:g}, {hi:g}] s (at most {e.max_transitions})",
        )
    if e.max_reconnect_rate is not None:
        return Outcome(
            e,
            peak <= e.max_reconnect_rate,
            f"peak {peak} reconnection attempts/s (at most {e.max_reconnect_rate:g})",
        )
    assert e.self_suspicion is not None
    return Outcome(
        e,
        suspected == e.self_suspicion,
        f"self-suspicion {'raised' if suspected else 'not raised'} (expected {'raised' if e.self_suspicion else 'not raised'})",
    )
