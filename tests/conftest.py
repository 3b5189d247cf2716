"""Shared fixtures: the test helpers in tests/servers.py are importable."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
