"""Diagrams of machine specs: Mermaid ``stateDiagram-v2`` and Graphviz DOT.

Both are generated from the same validated spec, so the diagram in a design
review is the machine that runs. Guard expressions label the edges; the
initial state gets an entry arrow; final states are marked. Optional counts
(from a monitor snapshot) annotate each state with how many nodes are in it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ._spec import MachineSpec, TransitionSpec

__all__ = ["FORMATS", "render", "to_dot", "to_mermaid"]

FORMATS = ("mermaid", "dot")


def _edges(spec: MachineSpec) -> list[tuple[str, str, str]]:
    """(source, dest, label) per edge, merging identical labels."""
    seen: dict[tuple[str, str, str], None] = {}
    for t in spec.transitions:
        for source in t.sources:
            dest = t.dest if t.dest is not None else source
            seen.setdefault((source, dest, _label(t)), None)
    return list(seen)


def _label(t: TransitionSpec) -> str:
    guard = t.label()
    text = t.trigger + (f" [{guard}]" if guard else "")
    return text + (" (internal)" if t.dest is None else "")


def _count_suffix(counts: Mapping[str, int] | None, state: str) -> str:
    if counts is None:
        return ""
    n = counts.get(state, 0)
    return f" ({n} node{'s' if n != 1 else ''})"


_MERMAID_UNSAFE = re.compile(r"[:;#{}\"]")
_MERMAID_SWAP = {":": " -", ";": ","}


def _mermaid_text(text: str) -> str:
    return _MERMAID_UNSAFE.sub(
        lambda m: _MERMAID_SWAP.get(m.group(0), ""), text
    ).strip()


def to_mermaid(spec: MachineSpec, *, counts: Mapping[str, int] | None = None) -> str:
    """The spec as a Mermaid ``stateDiagram-v2``.

    Args:
        spec: the machine spec.
        counts: optional ``state -> number of nodes`` to show on each state.
    """
    out = ["stateDiagram-v2", "    direction LR"]
    for state, doc in spec.states:
        text = _mermaid_text(doc) + _count_suffix(counts, state)
        out.append(f"    {state} : {text}")
    out.append(f"    [*] --> {spec.initial}")
    for source, dest, label in _edges(spec):
        out.append(f"    {source} --> {dest} : {_mermaid_text(label)}")
    for state in sorted(spec.final):
        out.append(f"    {state} --> [*]")
    return "\n".join(out) + "\n"


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(spec: MachineSpec, *, counts: Mapping[str, int] | None = None) -> str:
    """The spec as a Graphviz ``digraph`` (render with ``dot -Tsvg``).

    Args:
        spec: the machine spec.
        counts: optional ``state -> number of nodes`` to show on each state.
    """
    out = [
        f"digraph {_dot_quote(spec.name)} {{",
        "    rankdir=LR;",
        '    node [shape=box, style=rounded, fontname="Helvetica"];',
        '    edge [fontname="Helvetica", fontsize=10];',
        '    "__initial" [shape=point, label=""];',
    ]
    for state, doc in spec.states:
        extra = ", peripheries=2" if state in spec.final else ""
        label = state + _count_suffix(counts, state)
        out.append(
            f"    {_dot_quote(state)} [label={_dot_quote(label)}, tooltip={_dot_quote(doc)}{extra}];"
        )
    out.append(f'    "__initial" -> {_dot_quote(spec.initial)};')
    for source, dest, label in _edges(spec):
        out.append(
            f"    {_dot_quote(source)} -> {_dot_quote(dest)} [label={_dot_quote(label)}];"
        )
    out.append("}")
    return "\n".join(out) + "\n"


def render(
    spec: MachineSpec, fmt: str = "mermaid", *, counts: Mapping[str, int] | None = None
) -> str:
    """Render ``spec`` as ``mermaid`` or ``dot``."""
    if fmt == "mermaid":
        return to_mermaid(spec, counts=counts)
    if fmt == "dot":
        return to_dot(spec, counts=counts)
    raise ValueError(
        f"unknown diagram format {fmt!r}; use one of: {', '.join(FORMATS)}"
    )
