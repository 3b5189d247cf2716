"""`nodefsm check` and `nodefsm diagram`, in-process and as installed."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from nodefsm._cli import main

ROOT = Path(__file__).resolve().parent.parent
INVALID = Path(__file__).parent / "specs_invalid"


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def test_check_builtins_ok() -> None:
    """With no argument, check validates the built-in specs and exits 0."""
    code, out = run("check")
    assert 0 == code
    assert "node_status: ok (node_status: 8 states" in out


def test_check_invalid_exits_2_with_one_line_each(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Broken specs: exit 2, one file:line line per problem on stderr."""
    code, _ = run(
        "check", str(INVALID / "unknown_guard.toml"), str(INVALID / "gap.toml")
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert 2 == code
    assert 2 == len(err)
    assert err[0].endswith(
        "(known: attempts_exhausted, give_up_on_persistent, is_critical, is_overload, is_overloaded, is_persistent, is_slow, is_transient, level_falls, level_rises, reached_degrade_after, reached_offline_after, recovered)"
    )
    assert "gap.toml:11:" in err[1]


def test_diagram_to_stdout_and_file(tmp_path: Path) -> None:
    """diagram writes Mermaid to stdout or DOT to a file."""
    code, out = run("diagram", "reconnection")
    assert 0 == code
    assert out.startswith("stateDiagram-v2")
    target = tmp_path / "r.dot"
    code, out = run("diagram", "reconnection", "--format", "dot", "-o", str(target))
    assert (0, "") == (code, out)
    assert target.read_text().startswith('digraph "reconnection"')


def test_diagram_from_a_spec_file(tmp_path: Path) -> None:
    """A spec path works as well as a built-in name."""
    spec = tmp_path / "m.toml"
    spec.write_text(
        "[machine]\nname='m'\ninitial='a'\nfinal=['b']\n[states]\na='A'\nb='B'\n"
        "[[transition]]\ntrigger='go'\nsource='a'\ndest='b'\n"
    )
    code, out = run("diagram", str(spec))
    assert 0 == code
    assert "a --> b : go" in out


def test_diagram_counts(tmp_path: Path) -> None:
    """--counts annotates states from a snapshot file in any accepted shape."""
    for payload in [
        {"online": 2},
        {"node_status": {"online": 2}},
        {"counts": {"online": 2}},
        {"counts": {"node_status": {"online": 2}}},
    ]:
        snap = tmp_path / "s.json"
        snap.write_text(json.dumps(payload))
        code, out = run("diagram", "node_status", "--counts", str(snap))
        assert 0 == code
        assert "online : Answering well - route to it. (2 nodes)" in out


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "no such file"),
        ("{not json", ":1: invalid JSON"),
        ('{"online": -1}', "expected an object"),
        ('{"nowhere": 1}', "unknown state(s) nowhere"),
        (b"\xff\xfe", "cannot read"),
    ],
)
def test_diagram_bad_counts(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str | bytes | None,
    fragment: str,
) -> None:
    """Bad --counts files: exit 2 with one line naming the flag and file."""
    snap = tmp_path / "s.json"
    if isinstance(content, bytes):
        snap.write_bytes(content)
    elif content is not None:
        snap.write_text(content)
    code, _ = run("diagram", "node_status", "--counts", str(snap))
    err = capsys.readouterr().err
    assert 2 == code
    assert err.startswith("--counts: ")
    assert fragment in err
    assert 1 == len(err.strip().splitlines())


def test_diagram_unwritable_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An output path that cannot be written is a one-line usage error."""
    code, _ = run("diagram", "degradation", "-o", str(tmp_path / "missing" / "x.mmd"))
    assert 2 == code
    assert capsys.readouterr().err.startswith("-o: cannot write")


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        ([], "the following arguments are required: COMMAND"),
        (
            ["diagram", "node_status", "--format", "png"],
            "argument --format: invalid choice",
        ),
        (["diagram", "nope"], "nope:1: no such file or built-in machine"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_usage_errors(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Usage errors exit 2 with a single line, never a traceback."""
    code, _ = run(*argv)
    err = capsys.readouterr().err
    assert 2 == code
    assert fragment in err
    assert "Traceback" not in err
    assert 1 == len(err.strip().splitlines())


def test_python_dash_m_subprocess() -> None:
    """`python -m nodefsm check` runs as a real process."""
    result = subprocess.run(
        [sys.executable, "-m", "nodefsm", "check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert 0 == result.returncode
    assert 3 == len(result.stdout.strip().splitlines())


def test_wheel_carries_specs_and_works_from_anywhere(tmp_path: Path) -> None:
    """The built wheel contains the specs; installed alone, check/diagram work anywhere."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("nodefsm-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for spec in ("node_status", "reconnection", "degradation"):
        assert f"nodefsm/specs/machines/{spec}.toml" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    for argv in (["check"], ["diagram", "node_status", "--format", "dot"]):
        result = subprocess.run(
            [
                sys.executable,
                "-I",
                "-c",
                "import sys; sys.path.insert(0, sys.argv[1]); import nodefsm._cli as c; sys.exit(c.main(sys.argv[2:]))",
                str(site),
                *argv,
            ],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert 0 == result.returncode, result.stderr
    assert (
        str(site)
        in subprocess.run(
            [
                sys.executable,
                "-I",
                "-c",
                "import sys; sys.path.insert(0, sys.argv[1]); import nodefsm; print(nodefsm.__file__)",
                str(site),
            ],
            cwd=elsewhere,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )


def test_closed_stdout_is_not_a_traceback() -> None:
    """`nodefsm simulate ... | head -1`: the early exit of the reader is quiet."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "nodefsm", "simulate", "cluster-restart"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert 0 == proc.wait(timeout=60)
    assert "Traceback" not in err
