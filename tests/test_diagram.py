"""Diagrams: Mermaid and DOT from the specs, docs kept fresh, counts overlay."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from nodefsm._diagram import render, to_dot, to_mermaid
from nodefsm._docs import render_blocks
from nodefsm._spec import builtin_spec_names, load_spec, load_spec_text

ROOT = Path(__file__).resolve().parent.parent
MERMAID_LINE = re.compile(
    r"^    (direction LR|\[\*\] --> \w+|\w+ --> \[\*\]|\w+ : [^:;#{}\"]+|\w+ --> \w+ : [^:;#{}\"]+)$"
)


@pytest.mark.parametrize("name", builtin_spec_names())
def test_mermaid_is_a_state_diagram(name: str) -> None:
    """Every line is valid stateDiagram-v2 syntax; every edge and state appears."""
    spec = load_spec(name)
    text = to_mermaid(spec)
    lines = text.splitlines()
    assert "stateDiagram-v2" == lines[0]
    for line in lines[1:]:
        assert MERMAID_LINE.match(line), line
    assert f"    [*] --> {spec.initial}" in lines
    for t in spec.transitions:
        for source in t.sources:
            dest = t.dest or source
            assert any(
                ln.startswith(f"    {source} --> {dest} : {t.trigger}") for ln in lines
            )
    for guard in {g for t in spec.transitions for g in t.guards}:
        assert guard in text


@pytest.mark.parametrize("name", builtin_spec_names())
def test_dot_renders_with_graphviz(name: str, tmp_path: Path) -> None:
    """The DOT output renders with Graphviz's dot into an SVG naming every state."""
    dot = shutil.which("dot")
    if dot is None:  # pragma: no cover - .ci/run installs graphviz
        pytest.skip("graphviz 'dot' is not installed")
    spec = load_spec(name)
    result = subprocess.run(
        [dot, "-Tsvg"], input=to_dot(spec), capture_output=True, text=True, check=True
    )
    assert "<svg" in result.stdout
    for state in spec.state_names:
        assert f">{state}</text>" in result.stdout


def test_final_states_are_marked() -> None:
    """Final states get [*] in Mermaid and a double border in DOT."""
    spec = load_spec_text(
        "[machine]\nname='m'\ninitial='a'\nfinal=['b']\n[states]\na='A: first'\nb='B'\n"
        "[[transition]]\ntrigger='go'\nsource='a'\ndest='b'\nconditions=['recovered']\n"
        "unless=['is_slow']\n"
    )
    assert "    b --> [*]" in to_mermaid(spec)
    assert "a : A - first" in to_mermaid(spec)
    assert "go [recovered and not is_slow]" in to_mermaid(spec)
    assert "peripheries=2" in to_dot(spec)


def test_counts_annotate_states() -> None:
    """Counts from a snapshot show how many nodes sit in each state."""
    spec = load_spec("node_status")
    text = render(spec, "mermaid", counts={"online": 3, "offline": 1})
    assert "(3 nodes)" in text
    assert "(1 node)" in text
    assert "(0 nodes)" in text
    assert "online (3 nodes)" in render(spec, "dot", counts={"online": 3})


def test_unknown_format() -> None:
    """An unknown format is a ValueError naming the valid ones."""
    with pytest.raises(ValueError, match="mermaid, dot"):
        render(load_spec("degradation"), "png")


def test_docs_diagrams_are_current() -> None:
    """docs/machines.md embeds the diagrams generated from today's specs."""
    text = (ROOT / "docs" / "machines.md").read_text()
    assert render_blocks(text) == text, "run: python -m nodefsm._docs docs/machines.md"
    for name in builtin_spec_names():
        assert f"<!-- diagram:{name} -->" in text


def test_refresh_rewrites_stale_blocks(tmp_path: Path) -> None:
    """refresh() replaces a stale block and reports the change."""
    from nodefsm._docs import refresh

    doc = tmp_path / "m.md"
    doc.write_text("x\n<!-- diagram:degradation -->\nstale\n<!-- /diagram -->\n")
    assert refresh(doc)
    assert not refresh(doc)
    assert "stateDiagram-v2" in doc.read_text()
