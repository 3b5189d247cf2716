"""The monitor's TOML configuration file.

::

    nodes = ["http://10.0.0.5:11434", "http://10.0.0.6:11434"]

    [monitor]            # MonitorConfig: interval, timeout, min_timeout, max_timeout,
    interval = 5.0       # fast_interval, down_interval, jitter, slow_start,
    profile = "ollama"   # give_up_on_persistent; and the probe: profile, path, models

    [thresholds]         # NodeThresholds: degrade_after, offline_after, recover_after, ...
    [retry]              # reconnection backoff: retries, base, cap, factor, jitter, mode
                         # (defaults: nodefsm.RECONNECT_POLICY)
    [degradation]        # DegradationPolicy: mode, max_degraded_fraction
    [suspicion]          # SuspicionPolicy: min_nodes, fraction, window

Every problem is one line naming the file, the line and the key.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from ._cluster import SuspicionPolicy
from ._config import DegradationPolicy, NodeThresholds
from ._monitor import RECONNECT_POLICY, MonitorConfig
from ._probe import Probe, Profile, parse_target
from ._retry import RetryPolicy
from ._spec import _Lines, toml_error_line
from .exceptions import ConfigurationError

__all__ = ["MonitorFile", "config_from_data", "load_config"]

_PROBE_KEYS = {"profile", "path", "models", "source_node"}
_SECTIONS: dict[str, type] = {
    "thresholds": NodeThresholds,
    "retry": RetryPolicy,
    "degradation": DegradationPolicy,
    "suspicion": SuspicionPolicy,
}
_MONITOR_KEYS = (
    {
        f.name
        for f in attrs.fields(MonitorConfig)
        if f.name
        not in ("probe", "thresholds", "reconnect_policy", "degradation", "suspicion")
    }
    | _PROBE_KEYS
    | {"duration"}
)


@attrs.frozen
class MonitorFile:
    """A loaded configuration: the monitor config, node URLs, and duration."""

    config: MonitorConfig
    nodes: tuple[str, ...]
    duration: float | None


def _fail(path: str, line: int, message: str) -> ConfigurationError:
    return ConfigurationError(f"{path}:{line}: {message}")


def _build(
    cls: type,
    values: dict[str, Any],
    where: str,
    path: str,
    lines: _Lines,
    base: Any = None,
) -> Any:
    known = {f.name for f in attrs.fields(cls)}
    for key in values:
        if key not in known:
            raise _fail(
                path,
                lines.at(where, key),
                f"[{where}] unknown key {key!r}; known: {', '.join(sorted(known))}",
            )
    try:
        if base is not None:
            return attrs.evolve(base, **values)
        return cls(**values)
    except (ConfigurationError, ValueError, TypeError) as exc:
        message = str(exc)
        culprit = next(
            (k for k in values if re.search(rf"\b{re.escape(k)}\b", message)), None
        )
        line = lines.at(where, culprit) if culprit else lines.at(where)
        raise _fail(path, line, f"[{where}] {message}") from None


def load_config(path: str | Path) -> MonitorFile:
    """Load and validate a monitor configuration file.

    Raises:
        ConfigurationError: one line, ``file:line: [section] key: problem``.
    """
    shown = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(f"{shown}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{shown}: cannot read: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _fail(shown, toml_error_line(exc, text), f"invalid TOML: {exc}") from None
    lines = _Lines(text)
    allowed = {"nodes", "node", "monitor", *_SECTIONS}
    for key in data:
        if key not in allowed:
            line = lines.table.get(("", -1, key)) or lines.at(key)
            raise _fail(
                shown, line, f"unknown key {key!r}; known: {', '.join(sorted(allowed))}"
            )

    nodes: list[str] = []
    raw_nodes = data.get("nodes", [])
    if not isinstance(raw_nodes, list) or not all(
        isinstance(u, str) for u in raw_nodes
    ):
        raise _fail(shown, lines.at("", "nodes"), "nodes must be a list of URL strings")
    nodes += raw_nodes
    for i, entry in enumerate(data.get("node", [])):
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise _fail(
                shown,
                lines.at("node", None, i),
                'each [[node]] needs url = "http://host:port"',
            )
        nodes.append(entry["url"])
    for url in nodes:
        try:
            parse_target(url)
        except ConfigurationError as exc:
            raise _fail(
                shown,
                lines.at("", "nodes")
                if url in raw_nodes
                else lines.at("node", "url", 0),
                str(exc),
            ) from None

    config, duration = config_from_data(data, shown, lines)
    return MonitorFile(
        config=config,
        nodes=tuple(nodes),
        duration=float(duration) if duration else None,
    )


def config_from_data(
    data: Mapping[str, Any], shown: str, lines: _Lines
) -> tuple[MonitorConfig, float | None]:
    """Build a :class:`MonitorConfig` from parsed TOML tables.

    ``data`` holds the ``monitor``, ``thresholds``, ``retry``, ``degradation``
    and ``suspicion`` tables (any may be missing).

    Returns:
        The config and the ``duration`` key of ``[monitor]``, if any.

    Raises:
        ConfigurationError: one line naming the file, line and key.
    """
    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        values = data.get(name, {})
        if not isinstance(values, dict):
            raise _fail(shown, lines.at(name), f"[{name}] must be a table")
        # [retry] adjusts the monitor's reconnection policy, not the seed's.
        base = RECONNECT_POLICY if name == "retry" else None
        sections[name] = _build(cls, values, name, shown, lines, base)

    monitor = dict(data.get("monitor", {}))
    for key in monitor:
        if key not in _MONITOR_KEYS:
            raise _fail(
                shown,
                lines.at("monitor", key),
                f"[monitor] unknown key {key!r}; known: {', '.join(sorted(_MONITOR_KEYS))}",
            )
    duration = monitor.pop("duration", None)
    if duration is not None and (
        isinstance(duration, bool)
        or not isinstance(duration, int | float)
        or duration <= 0
    ):
        raise _fail(
            shown,
            lines.at("monitor", "duration"),
            f"[monitor] duration={duration!r} must be seconds > 0",
        )
    probe_values = {k: monitor.pop(k) for k in list(monitor) if k in _PROBE_KEYS}
    if "profile" in probe_values and probe_values["profile"] not in {
        p.value for p in Profile
    }:
        raise _fail(
            shown,
            lines.at("monitor", "profile"),
            f"[monitor] profile={probe_values['profile']!r}; use one of: {', '.join(p.value for p in Profile)}",
        )
    probe = _build(Probe, probe_values, "monitor", shown, lines)
    config = _build(
        MonitorConfig,
        {
            **monitor,
            "probe": probe,
            "thresholds": sections["thresholds"],
            "reconnect_policy": sections["retry"],
            "degradation": sections["degradation"],
            "suspicion": sections["suspicion"],
        },
        "monitor",
        shown,
        lines,
    )
    return config, float(duration) if duration else None
