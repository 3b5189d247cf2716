"""Package-level promises: exports, core import purity, version."""

from __future__ import annotations

import json
import subprocess
import sys

import nodefsm


def test_exported_members() -> None:
    """__all__ is sorted and every name in it exists."""
    assert sorted(nodefsm.__all__) == nodefsm.__all__
    for name in nodefsm.__all__:
        assert hasattr(nodefsm, name), name


CORE = ["nodefsm._classify", "nodefsm._retry", "nodefsm._stats", "nodefsm.exceptions"]


def test_core_imports_neither_trio_nor_httpx() -> None:
    """The pure core modules import without loading trio or httpx."""
    code = (
        "import importlib, json, sys\n"
        f"for m in {CORE!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(k for k in sys.modules if k.split('.')[0] in ('trio', 'httpx', 'httpcore'))))"
    )
    # nodefsm/__init__ pulls in the shell, so load the core modules without it.
    code = (
        "import sys, types\nsys.modules['nodefsm'] = types.ModuleType('nodefsm')\n"
        + code.replace(
            "import importlib",
            "import importlib, pathlib\nsys.modules['nodefsm'].__path__ = ["
            + repr(nodefsm.__path__[0])
            + "]\nimport importlib",
        )
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == []


def test_core_classifies_without_httpx_loaded() -> None:
    """classify works on stdlib errors in a process that never imported httpx."""
    code = (
        "import sys, types\n"
        "sys.modules['nodefsm'] = types.ModuleType('nodefsm')\n"
        f"sys.modules['nodefsm'].__path__ = [{nodefsm.__path__[0]!r}]\n"
        "from nodefsm._classify import classify\n"
        "print(classify(ConnectionRefusedError()).category.value, 'httpx' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "connection_refused False" == out.stdout.strip()


def test_version() -> None:
    """The package has a version string."""
    assert 2 == nodefsm.__version__.count(".")


def test_readme_shows_real_output() -> None:
    """The README's `nodefsm simulate` example is what the command prints today."""
    import io
    import re
    from pathlib import Path

    from nodefsm._cli import main

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = re.search(
        r"\$ nodefsm simulate node-restart -q\n(.*?)```", readme, re.DOTALL
    )
    assert block is not None
    out = io.StringIO()
    assert 0 == main(["simulate", "node-restart", "-q"], out=out)
    assert block.group(1) == out.getvalue()
