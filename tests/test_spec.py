"""Spec loading and validation: the built-in specs and a corpus of broken ones."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nodefsm import SpecError
from nodefsm._engine import NodeEvent, NodeStatus, ReconnectEvent, ReconnectState
from nodefsm._spec import builtin_spec_names, load_spec, load_spec_text, to_jsonable

INVALID = sorted((Path(__file__).parent / "specs_invalid").glob("*.toml"))


def test_builtin_specs_load() -> None:
    """The three built-in machines load and validate."""
    assert ("degradation", "node_status", "reconnection") == builtin_spec_names()
    for name in builtin_spec_names():
        spec = load_spec(name)
        assert name == spec.name
        assert all(doc for _, doc in spec.states)
        assert all(t.description for t in spec.transitions)


def test_node_status_has_the_seeds_eight_states() -> None:
    """node_status declares exactly the seed's eight statuses, and the enums agree."""
    spec = load_spec("node_status")
    assert {s.value for s in NodeStatus} == set(spec.state_names)
    assert {e.value for e in NodeEvent} == set(spec.triggers)
    assert "starting" == spec.initial


def test_reconnection_enums_agree() -> None:
    """The reconnection enums match the spec."""
    spec = load_spec("reconnection")
    assert {s.value for s in ReconnectState} == set(spec.state_names)
    assert {e.value for e in ReconnectEvent} == set(spec.triggers)


def test_degradation_levels_agree() -> None:
    """The degradation machine's states are the five levels in order."""
    from nodefsm._config import DegradationLevel

    assert (
        tuple(lv.label for lv in DegradationLevel)
        == load_spec("degradation").state_names
    )


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_spec_reports_its_line(path: Path) -> None:
    """Each broken spec gives the expected one-line `file:line: ...` error."""
    text = path.read_text()
    expected = re.match(r"# expect: (.*)", text)
    assert expected is not None
    with pytest.raises(SpecError) as info:
        load_spec_text(text, path=path.name)
    problems = info.value.problems
    assert any(p.startswith(expected.group(1)) for p in problems), problems
    assert all(re.match(r"^[\w.]+:\d+: ", p) for p in problems)
    assert all("\n" not in p for p in problems)


def test_bad_names_reports_every_problem() -> None:
    """One load reports all the problems of a file, not just the first."""
    text = (Path(__file__).parent / "specs_invalid" / "bad_names.toml").read_text()
    with pytest.raises(SpecError) as info:
        load_spec_text(text, path="x.toml")
    joined = "\n".join(info.value.problems)
    for fragment in [
        "machine name 'Bad Name'",
        "per = 'galaxy'",
        "unknown key 'color'",
        "state name 'B'",
        "needs a one-line description",
        "order = 'first'",
        "unless must be a list",
    ]:
        assert fragment in joined


def test_missing_file_is_a_spec_error() -> None:
    """A missing file names the built-ins."""
    with pytest.raises(
        SpecError, match="built-ins: degradation, node_status, reconnection"
    ):
        load_spec("no/such/file.toml")


def test_unreadable_file(tmp_path: Path) -> None:
    """A file that is not UTF-8 is reported, not raised raw."""
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(bad)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            "[machine]\nname='m'\ninitial='a'\n[states]\na='A'\n",
            "no [[transition]] declared",
        ),
        (
            "[machine]\nname='m'\n[states]\na='A'\n[[transition]]\ntrigger='t'\nsource='a'\n",
            "missing initial",
        ),
        (
            "[machine]\nname='m'\ninitial='z'\n[states]\na='A'\n[[transition]]\ntrigger='t'\nsource='a'\n",
            "initial state 'z' is not declared",
        ),
        (
            "[machine]\nname='m'\ninitial='a'\nfinal='a'\n[states]\na='A'\n[[transition]]\ntrigger='t'\nsource='a'\n",
            None,
        ),
        (
            "[machine]\nname='m'\ninitial='a'\nfinal=[1]\n[states]\na='A'\n[[transition]]\ntrigger='t'\nsource='a'\n",
            "final must be a list",
        ),
        (
            "[machine]\nname='m'\ninitial='a'\nfinal=['q']\n[states]\na='A'\n[[transition]]\ntrigger='t'\nsource='a'\n",
            "final state 'q' is not declared",
        ),
        (
            "[machine]\nname='m'\ninitial='a'\ndescription=3\n[states]\na='A'\n[[transition]]\ntrigger='t'\nsource='a'\n",
            "description must be a string",
        ),
        (
            "[machine]\nname='m'\ninitial='a'\n[states]\na='A'\n[[transition]]\ntrigger='t'\nsource=[]\n",
            "source must name",
        ),
        (
            "[machine]\nname='m'\ninitial='a'\n[states]\na='A'\n[[transition]]\ntrigger='t'\nsource='q'\n",
            "unknown source state 'q'",
        ),
        (
            "[machine]\nname='m'\ninitial='a'\n[states]\na='A'\n[[transition]]\ntrigger='T'\nsource='a'\n",
            "trigger 'T' is not valid",
        ),
        (
            "[machine]\nname='m'\ninitial='a'\n[states]\na='A'\n[[transition]]\ntrigger='t'\nsource='a'\ndescription=1\n",
            "description must be a string",
        ),
        (
            "[machine]\nname='m'\ninitial='a'\n[states]\na='A'\n[[transition]]\ntrigger='t'\nsource='a'\ndest=5\n",
            "unknown dest state 5",
        ),
        (
            "transition=[1]\n[machine]\nname='m'\ninitial='a'\n[states]\na='A'\n",
            "must be a table",
        ),
        ("machine=1\nstates=2\nextra=3\n", "unknown top-level key 'extra'"),
    ],
)
def test_small_invalid_specs(text: str, fragment: str | None) -> None:
    """Assorted structural errors each produce a clear line (or load when valid)."""
    if fragment is None:
        final_state_spec = load_spec_text(text)
        assert frozenset({"a"}) == final_state_spec.final
        return
    with pytest.raises(SpecError) as info:
        load_spec_text(text, path="s.toml")
    assert any(fragment in p for p in info.value.problems), info.value.problems


def test_wildcard_source_and_internal_transitions() -> None:
    """source = "*" means every state; a missing dest is an internal transition."""
    spec = load_spec_text(
        "[machine]\nname='m'\ninitial='a'\n[states]\na='A'\nb='B'\n"
        "[[transition]]\ntrigger='go'\nsource='a'\ndest='b'\n"
        "[[transition]]\ntrigger='back'\nsource='b'\ndest='a'\n"
        "[[transition]]\ntrigger='tick'\nsource='*'\n"
    )
    tick = spec.transitions_for("b", "tick")
    assert 1 == len(tick)
    assert tick[0].dest is None
    assert ("go", "tick") == spec.allowed("a")
    assert "A" == spec.describe("a")
    assert "tick" in [t["trigger"] for t in to_jsonable(spec)["transitions"]]
