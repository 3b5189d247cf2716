"""The live terminal view and plain event lines (no I/O here: text only)."""

from __future__ import annotations

import time
from collections.abc import Mapping

from ._cluster import ClusterSummary
from ._engine import TransitionRecord

__all__ = ["event_line", "render_table"]

_COLUMNS = (
    "node",
    "status",
    "reconnect",
    "p50 ms",
    "p99 ms",
    "fails",
    "last error",
    "next retry",
)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}"


def render_table(
    summary: ClusterSummary,
    *,
    now: float,
    title: str = "",
    labels: Mapping[str, str] | None = None,
) -> str:
    """One row per node: status, reconnection, latency, failures, last error, next retry.

    Args:
        summary: the cluster summary.
        now: Unix time, to show the next retry as "in N s".
        title: an optional first line.
        labels: optional names to show before node ids (the demo's "alpha").
    """
    labels = labels or {}
    rows = [_COLUMNS]
    for snap in summary.nodes:
        c = snap.last_classification
        retry = (
            "-"
            if snap.next_retry_at is None
            else f"in {max(0.0, snap.next_retry_at - now):.1f}s"
        )
        rows.append(
            (
                f"{labels[snap.node]} {snap.node}"
                if snap.node in labels
                else snap.node,
                snap.status.value,
                snap.reconnection.value,
                _ms(snap.stats.p50),
                _ms(snap.stats.p99),
                str(snap.stats.consecutive_failures),
                c.category.value if c is not None else "-",
                retry,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
    lines = [title] if title else []
    for r in rows:
        lines.append(
            "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
        )
    counts = {k: v for k, v in summary.counts.items() if v}
    state = ", ".join(f"{k} {v}" for k, v in counts.items()) or "no nodes"
    lines.append(
        f"cluster: {state}; degradation {summary.level.label} ({summary.mode.value})"
        + (
            "; SELF-SUSPECTED: the monitor's own network may be failing"
            if summary.self_suspected
            else ""
        )
    )
    return "\n".join(lines)


def event_line(record: TransitionRecord) -> str:
    """A one-line human description of a transition record."""
    stamp = (
        time.strftime("%H:%M:%S", time.localtime(record.ts))
        + f".{int(record.ts * 1000) % 1000:03d}"
    )
    c = record.classification
    why = f" [{c.severity.value}:{c.category.value}]" if c is not None else ""
    move = (
        f"{record.source} -> {record.dest}"
        if record.changed
        else f"{record.source} (stays)"
    )
    return f"{stamp} {record.machine:<12} {record.node:<22} {move:<24} {record.trigger}{why}: {record.reason}"
