"""Machine specs: TOML files loaded into validated, frozen values.

A spec is data (``specs/machines/*.toml``)::

    [machine]
    name = "reconnection"
    description = "..."
    per = "node"            # or "cluster"
    initial = "idle"
    final = []

    [states]
    idle = "Nothing to do: the node is not offline."
    waiting = "A backoff timer is running."

    [[transition]]
    trigger = "node_offline"
    source = ["idle"]       # a list, one name, or "*" for every state
    dest = "waiting"        # omit for an internal transition (no state change)
    conditions = []         # guard names that must all be true
    unless = []             # guard names that must all be false
    order = 10              # optional: evaluation order within (state, trigger)
    description = "The node went offline: start the backoff."

Everything is checked at load time, before any event runs; every problem is
one line ``file:line: what is wrong; what would be right``.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import attrs

from ._guards import DOMAINS, GUARDS, Guard
from .exceptions import SpecError

__all__ = [
    "MachineSpec",
    "TransitionSpec",
    "builtin_spec_names",
    "builtin_spec_path",
    "load_spec",
    "load_spec_text",
]

_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")
_MACHINE_KEYS = {"name", "description", "per", "initial", "final"}
_TRANSITION_KEYS = {
    "trigger",
    "source",
    "dest",
    "conditions",
    "unless",
    "order",
    "description",
}
_TOP_KEYS = {"machine", "states", "transition"}
# Names transitions would inject on models, or that our facade uses.
_RESERVED = {"trigger", "state", "machine", "node", "model"}


@attrs.frozen
class TransitionSpec:
    """One declared transition (``dest is None``: internal, no state change)."""

    trigger: str
    sources: tuple[str, ...]
    dest: str | None
    conditions: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()
    order: int = 0
    description: str = ""
    line: int = 0

    @property
    def guards(self) -> tuple[str, ...]:
        """Every guard named, conditions first."""
        return self.conditions + self.unless

    def label(self) -> str:
        """The guard expression as written on diagram edges."""
        parts = list(self.conditions) + [f"not {u}" for u in self.unless]
        return " and ".join(parts)


@attrs.frozen
class MachineSpec:
    """A validated machine spec.

    Attributes:
        name: the machine name (``node_status``...).
        description: what the machine decides.
        per: ``node`` (one model per node) or ``cluster`` (one model).
        initial: the initial state.
        final: states with no way out, on purpose.
        states: ``(name, description)`` pairs in file order.
        transitions: every transition, in evaluation order.
        path: where the spec was loaded from.
    """

    name: str
    description: str
    per: str
    initial: str
    final: frozenset[str]
    states: tuple[tuple[str, str], ...]
    transitions: tuple[TransitionSpec, ...]
    path: str = "<string>"

    @property
    def state_names(self) -> tuple[str, ...]:
        """State names in file order."""
        return tuple(name for name, _ in self.states)

    @property
    def triggers(self) -> tuple[str, ...]:
        """Trigger names in first-use order."""
        return tuple(dict.fromkeys(t.trigger for t in self.transitions))

    def describe(self, state: str) -> str:
        """The one-line description of ``state``."""
        return dict(self.states)[state]

    def transitions_for(self, state: str, trigger: str) -> tuple[TransitionSpec, ...]:
        """The transitions tried, in order, for ``trigger`` fired in ``state``."""
        return tuple(
            t for t in self.transitions if t.trigger == trigger and state in t.sources
        )

    def allowed(self, state: str) -> tuple[str, ...]:
        """Triggers that have at least one transition from ``state``."""
        return tuple(
            dict.fromkeys(t.trigger for t in self.transitions if state in t.sources)
        )


# ---------------------------------------------------------------------------
# Line numbers: tomllib gives none, so map keys to lines with a light scan.

_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\"-]+)\s*\]\]?")
_KEY = re.compile(r"^\s*(\"[^\"]*\"|[A-Za-z0-9_-]+)\s*=")


class _Lines:
    def __init__(self, text: str) -> None:
        self.table: dict[tuple[str, int, str | None], int] = {}
        section, index = "", -1
        counts: dict[str, int] = {}
        for lineno, raw in enumerate(text.splitlines(), start=1):
            header = _HEADER.match(raw)
            if header:
                section = header.group(2).strip('"')
                if header.group(1) == "[[":
                    counts[section] = counts.get(section, -1) + 1
                    index = counts[section]
                else:
                    index = -1
                self.table.setdefault((section, index, None), lineno)
                continue
            key = _KEY.match(raw)
            if key:
                self.table.setdefault((section, index, key.group(1).strip('"')), lineno)

    def at(self, section: str, key: str | None = None, index: int = -1) -> int:
        return (
            self.table.get((section, index, key))
            or self.table.get((section, index, None))
            or 1
        )


# ---------------------------------------------------------------------------


def toml_error_line(exc: tomllib.TOMLDecodeError, text: str) -> int:
    """The line a TOML syntax error points at (the last line at end of document)."""
    match = re.search(r"line (\d+)", str(exc))
    return int(match.group(1)) if match else max(1, len(text.splitlines()))


class _Problems:
    def __init__(self, path: str) -> None:
        self.path = path
        self.items: list[tuple[int, str]] = []

    def add(self, line: int, message: str) -> None:
        self.items.append((line, message))

    def raise_if_any(self) -> None:
        if self.items:
            ordered = sorted(dict.fromkeys(self.items), key=lambda item: item[0])
            raise SpecError([f"{self.path}:{line}: {msg}" for line, msg in ordered])


def _names(value: object) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _known(names: Iterable[str]) -> str:
    return ", ".join(sorted(names))


def load_spec_text(
    text: str, *, path: str = "<string>", guards: Mapping[str, Guard] = GUARDS
) -> MachineSpec:
    """Parse and validate a machine spec from TOML text.

    Args:
        text: the TOML source.
        path: the file name used in error messages.
        guards: the guard registry names resolve against.

    Returns:
        The validated :class:`MachineSpec`.

    Raises:
        SpecError: with one ``path:line: ...`` line per problem.
    """
    problems = _Problems(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problems.add(toml_error_line(exc, text), f"invalid TOML: {exc}; fix the syntax")
        problems.raise_if_any()
        raise AssertionError("unreachable") from exc  # pragma: no cover
    lines = _Lines(text)

    for key in data.keys() - _TOP_KEYS:
        problems.add(
            lines.at(key), f"unknown top-level key {key!r}; known: {_known(_TOP_KEYS)}"
        )

    machine = data.get("machine")
    if not isinstance(machine, dict):
        problems.add(1, "missing [machine] table; add [machine] with name and initial")
        machine = {}
    for key in machine.keys() - _MACHINE_KEYS:
        problems.add(
            lines.at("machine", key),
            f"unknown key {key!r} in [machine]; known: {_known(_MACHINE_KEYS)}",
        )
    name = machine.get("name")
    if not isinstance(name, str) or not _IDENT.match(name):
        problems.add(
            lines.at("machine", "name"),
            f"machine name {name!r} is not valid; use a lower-case identifier such as 'node_status'",
        )
        name = "invalid"
    per = machine.get("per", "node")
    if per not in ("node", "cluster"):
        problems.add(
            lines.at("machine", "per"), f"per = {per!r}; use 'node' or 'cluster'"
        )
        per = "node"
    description = machine.get("description", "")
    if not isinstance(description, str):
        problems.add(lines.at("machine", "description"), "description must be a string")
        description = ""

    raw_states = data.get("states")
    if not isinstance(raw_states, dict) or not raw_states:
        problems.add(
            lines.at("states"),
            'missing or empty [states]; list each state = "description"',
        )
        raw_states = {}
    states: list[tuple[str, str]] = []
    for state, doc in raw_states.items():
        if not _IDENT.match(state):
            problems.add(
                lines.at("states", state),
                f"state name {state!r} is not a lower-case identifier",
            )
        if not isinstance(doc, str) or not doc.strip():
            problems.add(
                lines.at("states", state),
                f"state {state!r} needs a one-line description string",
            )
            doc = ""
        states.append((state, doc))
    known_states = {s for s, _ in states}

    initial = machine.get("initial")
    if isinstance(initial, list):
        problems.add(
            lines.at("machine", "initial"),
            f"initial = {initial!r} names {len(initial)} states; exactly one initial state is allowed",
        )
        initial = None
    elif not isinstance(initial, str):
        problems.add(
            lines.at("machine", "initial"),
            'missing initial state; add initial = "<state>"',
        )
        initial = None
    elif initial not in known_states and known_states:
        problems.add(
            lines.at("machine", "initial"),
            f"initial state {initial!r} is not declared; known: {_known(known_states)}",
        )
        initial = None

    final_raw = machine.get("final", [])
    final = _names(final_raw)
    if final is None:
        problems.add(
            lines.at("machine", "final"), "final must be a list of state names"
        )
        final = []
    for f in final:
        if f not in known_states:
            problems.add(
                lines.at("machine", "final"),
                f"final state {f!r} is not declared; known: {_known(known_states)}",
            )

    raw_transitions = data.get("transition", [])
    if not isinstance(raw_transitions, list) or not raw_transitions:
        problems.add(
            lines.at("transition", None, 0),
            "no [[transition]] declared; add at least one",
        )
        raw_transitions = []
    transitions: list[TransitionSpec] = []
    for index, raw in enumerate(raw_transitions):
        t = _parse_transition(
            raw,
            index,
            lines,
            problems,
            known_states,
            state_order=[s for s, _ in states],
            guards=guards,
        )
        if t is not None:
            transitions.append(t)

    # Trigger names: identifiers, distinct from states and reserved names.
    for t in transitions:
        if t.trigger in known_states or t.trigger in _RESERVED:
            problems.add(
                t.line,
                f"trigger {t.trigger!r} clashes with a state or reserved name; rename the trigger",
            )

    # Duplicates.
    seen: dict[tuple[object, ...], int] = {}
    for t in transitions:
        for source in t.sources:
            dup = (
                t.trigger,
                source,
                t.dest,
                frozenset(t.conditions),
                frozenset(t.unless),
            )
            if dup in seen:
                problems.add(
                    t.line,
                    f"duplicate transition {t.trigger!r} from {source!r} (first at line "
                    f"{seen[dup]}); remove one",
                )
            seen.setdefault(dup, t.line)

    # Order within (state, trigger): explicit order, then file order.
    transitions.sort(key=lambda t: t.order)

    if initial is not None and not problems.items:
        _check_graph(transitions, states, initial, set(final), lines, problems)
        _check_domains(transitions, states, guards, problems)
    problems.raise_if_any()
    assert isinstance(name, str)
    assert isinstance(initial, str)
    return MachineSpec(
        name=name,
        description=description,
        per=per,
        initial=initial,
        final=frozenset(final),
        states=tuple(states),
        transitions=tuple(transitions),
        path=path,
    )


def _parse_transition(
    raw: object,
    index: int,
    lines: _Lines,
    problems: _Problems,
    known_states: set[str],
    *,
    state_order: list[str],
    guards: Mapping[str, Guard],
) -> TransitionSpec | None:
    line = lines.at("transition", None, index)
    if not isinstance(raw, dict):
        problems.add(line, "a [[transition]] must be a table")
        return None
    ok = True
    for key in raw.keys() - _TRANSITION_KEYS:
        problems.add(
            lines.at("transition", key, index),
            f"unknown key {key!r} in [[transition]]; known: {_known(_TRANSITION_KEYS)}",
        )
        ok = False
    trigger = raw.get("trigger")
    if not isinstance(trigger, str) or not _IDENT.match(trigger):
        problems.add(
            lines.at("transition", "trigger", index),
            f"trigger {trigger!r} is not valid; use a lower-case identifier such as 'probe_failed'",
        )
        ok = False
    source_raw = raw.get("source")
    sources = _names(source_raw)
    if sources == ["*"]:
        sources = list(state_order)
    if not sources:
        problems.add(
            lines.at("transition", "source", index),
            'source must name one or more states (or "*")',
        )
        ok = False
        sources = []
    for s in sources:
        if s not in known_states:
            problems.add(
                lines.at("transition", "source", index),
                f"unknown source state {s!r}; known: {_known(known_states)}",
            )
            ok = False
    dest = raw.get("dest")
    if dest is not None and (not isinstance(dest, str) or dest not in known_states):
        problems.add(
            lines.at("transition", "dest", index),
            f"unknown dest state {dest!r}; known: {_known(known_states)} (omit dest for an "
            "internal transition)",
        )
        ok = False
    named: dict[str, list[str]] = {}
    for key in ("conditions", "unless"):
        names = _names(raw.get(key, []))
        if names is None:
            problems.add(
                lines.at("transition", key, index),
                f"{key} must be a list of guard names",
            )
            ok = False
            names = []
        for g in names:
            if g not in guards:
                problems.add(
                    lines.at("transition", key, index),
                    f"transition {trigger!r} names unknown guard {g!r} (known: {_known(guards)})",
                )
                ok = False
        named[key] = names
    order = raw.get("order", index)
    if not isinstance(order, int) or isinstance(order, bool):
        problems.add(
            lines.at("transition", "order", index), f"order = {order!r}; use an integer"
        )
        ok = False
        order = index
    description = raw.get("description", "")
    if not isinstance(description, str):
        problems.add(
            lines.at("transition", "description", index), "description must be a string"
        )
        ok = False
    if not ok:
        return None
    assert isinstance(trigger, str)
    return TransitionSpec(
        trigger=trigger,
        sources=tuple(sources),
        dest=dest,
        conditions=tuple(named["conditions"]),
        unless=tuple(named["unless"]),
        order=order,
        description=description,
        line=line,
    )


def _check_graph(
    transitions: list[TransitionSpec],
    states: list[tuple[str, str]],
    initial: str,
    final: set[str],
    lines: _Lines,
    problems: _Problems,
) -> None:
    edges: dict[str, set[str]] = {s: set() for s, _ in states}
    for t in transitions:
        for s in t.sources:
            if t.dest is not None and t.dest != s:
                edges[s].add(t.dest)
    reached = {initial}
    frontier = [initial]
    while frontier:
        for nxt in edges[frontier.pop()]:
            if nxt not in reached:
                reached.add(nxt)
                frontier.append(nxt)
    for s, _ in states:
        if s not in reached:
            problems.add(
                lines.at("states", s),
                f"state {s!r} is unreachable from initial state {initial!r}; add a transition "
                "into it or remove it",
            )
        if s not in final and not edges[s]:
            problems.add(
                lines.at("states", s),
                f"state {s!r} has no way out and is not declared final; add a transition out "
                "of it or list it in [machine] final",
            )
        if s in final and edges[s]:
            problems.add(
                lines.at("states", s),
                f"final state {s!r} has transitions to {_known(edges[s])}; a final state "
                "may only have internal transitions",
            )


def _check_domains(
    transitions: list[TransitionSpec],
    states: list[tuple[str, str]],
    guards: Mapping[str, Guard],
    problems: _Problems,
) -> None:
    """For (state, trigger) groups that test enumerable domains: no gaps, no overlaps."""
    triggers = list(dict.fromkeys(t.trigger for t in transitions))
    for state, _ in states:
        for trigger in triggers:
            group = [
                t for t in transitions if t.trigger == trigger and state in t.sources
            ]
            domains = sorted(
                {
                    d
                    for t in group
                    for g in t.guards
                    if (d := guards[g].domain) is not None
                }
            )
            if not domains:
                continue
            gaps: list[str] = []
            overlaps: dict[tuple[int, int], list[str]] = {}
            shadowed: dict[tuple[int, int], list[str]] = {}
            for combo in itertools.product(*(DOMAINS[d][0] for d in domains)):
                value = dict(zip(domains, combo, strict=True))
                text = ",".join(f"{d}={v}" for d, v in value.items())
                admitting = [t for t in group if _admits(t, value, guards)]
                fallbacks = [t for t in admitting if not _opaque(t, guards)]
                if not fallbacks:
                    gaps.append(text)
                    continue
                if len(fallbacks) > 1:
                    overlaps.setdefault(
                        (fallbacks[0].line, fallbacks[1].line), []
                    ).append(text)
                first = fallbacks[0]
                later = [
                    t for t in admitting if admitting.index(t) > admitting.index(first)
                ]
                for t in later:
                    if t not in fallbacks:
                        shadowed.setdefault((t.line, first.line), []).append(text)
            line = group[0].line
            if gaps:
                problems.add(
                    line,
                    f"in state {state!r}, trigger {trigger!r} has no transition for "
                    f"{_summary(gaps)}; add a transition with no other guard for these values",
                )
            for (a, b), values in overlaps.items():
                problems.add(
                    b,
                    f"in state {state!r}, trigger {trigger!r}: the transitions at lines {a} "
                    f"and {b} both apply to {_summary(values)}; make their guards exclusive",
                )
            for (a, b), values in shadowed.items():
                problems.add(
                    a,
                    f"in state {state!r}, trigger {trigger!r}: this transition can never fire "
                    f"for {_summary(values)} because line {b} always applies first; "
                    "reorder or tighten the guards",
                )


def _admits(
    t: TransitionSpec, value: dict[str, str], guards: Mapping[str, Guard]
) -> bool:
    for g in t.conditions:
        guard = guards[g]
        if guard.domain is not None and value[guard.domain] not in guard.admits:
            return False
    for g in t.unless:
        guard = guards[g]
        if guard.domain is not None and value[guard.domain] in guard.admits:
            return False
    return True


def _opaque(t: TransitionSpec, guards: Mapping[str, Guard]) -> bool:
    return any(guards[g].domain is None for g in t.guards)


def _summary(values: list[str]) -> str:
    shown = ", ".join(values[:4])
    return shown + (f" and {len(values) - 4} more" if len(values) > 4 else "")


# ---------------------------------------------------------------------------
# Built-in specs: inside the wheel as nodefsm/specs; in a source checkout
# (editable install) they sit at the repository root.


def _spec_root() -> Path:
    packaged = resources.files("nodefsm").joinpath("specs")
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "specs"


def builtin_spec_names() -> tuple[str, ...]:
    """Names of the built-in machine specs."""
    return tuple(sorted(p.stem for p in (_spec_root() / "machines").glob("*.toml")))


def builtin_spec_path(name: str) -> Path:
    """The file of the built-in machine spec ``name``."""
    return _spec_root() / "machines" / f"{name}.toml"


def load_spec(
    source: str | Path, *, guards: Mapping[str, Guard] = GUARDS
) -> MachineSpec:
    """Load a machine spec by built-in name or from a file.

    Args:
        source: a built-in name (``node_status``, ``reconnection``,
            ``degradation``) or a path to a TOML file.
        guards: the guard registry names resolve against.

    Raises:
        SpecError: the file is missing, unreadable or invalid.
    """
    path = Path(source)
    shown = str(source)
    if isinstance(source, str) and source in builtin_spec_names():
        path = builtin_spec_path(source)
        shown = f"specs/machines/{source}.toml"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        known = ", ".join(builtin_spec_names())
        raise SpecError(
            [f"{source}:1: no such file or built-in machine; built-ins: {known}"]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([f"{source}:1: cannot read: {exc}"]) from None
    return load_spec_text(text, path=shown, guards=guards)


def to_jsonable(spec: MachineSpec) -> dict[str, Any]:
    """The spec as plain data (for tooling)."""
    return {
        "name": spec.name,
        "per": spec.per,
        "initial": spec.initial,
        "final": sorted(spec.final),
        "states": dict(spec.states),
        "transitions": [
            {
                "trigger": t.trigger,
                "source": list(t.sources),
                "dest": t.dest,
                "conditions": list(t.conditions),
                "unless": list(t.unless),
                "description": t.description,
            }
            for t in spec.transitions
        ],
    }
