"""Keep the diagrams embedded in docs/machines.md equal to the specs.

``python -m nodefsm._docs`` rewrites every block between
``<!-- diagram:NAME -->`` and ``<!-- /diagram -->``; the test suite fails
when a block is stale.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from ._diagram import to_mermaid
from ._spec import load_spec

__all__ = ["refresh", "render_blocks"]

_BLOCK = re.compile(r"(<!-- diagram:(\w+) -->\n)(.*?)(<!-- /diagram -->)", re.DOTALL)


def render_blocks(text: str) -> str:
    """``text`` with every diagram block regenerated from its spec."""

    def fill(match: re.Match[str]) -> str:
        body = "```mermaid\n" + to_mermaid(load_spec(match.group(2))) + "```\n"
        return match.group(1) + body + match.group(4)

    return _BLOCK.sub(fill, text)


def refresh(path: Path) -> bool:
    """Rewrite ``path`` in place; return True when it changed."""
    old = path.read_text(encoding="utf-8")
    new = render_blocks(old)
    if new != old:
        path.write_text(new, encoding="utf-8")
    return new != old


if __name__ == "__main__":  # pragma: no cover - a maintenance script
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/machines.md")
    print(f"{target}: {'updated' if refresh(target) else 'up to date'}")
