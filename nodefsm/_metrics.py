"""Prometheus text exposition of the monitor, served on a tiny trio HTTP server.

The format is small and stable (text format 0.0.4), so nodefsm writes it
itself instead of pulling in a client library.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import trio

from ._cluster import ClusterSummary
from ._engine import NodeStatus, TransitionRecord

__all__ = ["TransitionCounter", "render_metrics", "serve_metrics"]


class TransitionCounter:
    """Counts transitions by (machine, trigger, dest) for the metrics."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, str]] = Counter()

    def add(self, records: Iterable[TransitionRecord]) -> None:
        """Count state-changing records."""
        for r in records:
            if r.changed:
                self.counts[(r.machine, r.trigger, r.dest)] += 1


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_metrics(
    summary: ClusterSummary, transitions: TransitionCounter | None = None
) -> str:
    """The Prometheus text exposition of a summary (and transition counts)."""
    out: list[str] = []

    def family(name: str, kind: str, doc: str) -> None:
        out.append(f"# HELP {name} {doc}")
        out.append(f"# TYPE {name} {kind}")

    family(
        "nodefsm_node_status", "gauge", "1 for the node's current status, 0 otherwise."
    )
    for snap in summary.nodes:
        for status in NodeStatus:
            value = 1 if snap.status is status else 0
            out.append(
                f'nodefsm_node_status{{node="{_label(snap.node)}",status="{status.value}"}} {value}'
            )
    family(
        "nodefsm_node_latency_seconds", "gauge", "Latency percentiles of recent probes."
    )
    for snap in summary.nodes:
        for q, v in (("0.5", snap.stats.p50), ("0.99", snap.stats.p99)):
            if v is not None:
                out.append(
                    f'nodefsm_node_latency_seconds{{node="{_label(snap.node)}",quantile="{q}"}} {v:.6f}'
                )
    family("nodefsm_node_consecutive_failures", "gauge", "Current failure streak.")
    for snap in summary.nodes:
        out.append(
            f'nodefsm_node_consecutive_failures{{node="{_label(snap.node)}"}} {snap.stats.consecutive_failures}'
        )
    family("nodefsm_node_errors_total", "counter", "Node failures by category.")
    for snap in summary.nodes:
        for cat, n in sorted(
            snap.stats.errors_by_category.items(), key=lambda kv: kv[0].value
        ):
            out.append(
                f'nodefsm_node_errors_total{{node="{_label(snap.node)}",category="{cat.value}"}} {n}'
            )
    family("nodefsm_cluster_degradation_level", "gauge", "0 none .. 4 critical.")
    out.append(f"nodefsm_cluster_degradation_level {int(summary.level)}")
    family(
        "nodefsm_cluster_self_suspected",
        "gauge",
        "1 while the monitor suspects its own network.",
    )
    out.append(f"nodefsm_cluster_self_suspected {int(summary.self_suspected)}")
    if transitions is not None:
        family(
            "nodefsm_transitions_total",
            "counter",
            "State changes by machine, trigger and destination.",
        )
        for (machine, trigger, dest), n in sorted(transitions.counts.items()):
            out.append(
                f'nodefsm_transitions_total{{machine="{machine}",trigger="{trigger}",dest="{dest}"}} {n}'
            )
    return "\n".join(out) + "\n"


async def serve_metrics(
    render: object,
    port: int,
    *,
    host: str = "127.0.0.1",
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``render()`` at ``/metrics`` on ``host:port`` until cancelled.

    Args:
        render: a callable returning the exposition text.
        port: the TCP port (0: any free port; the real one is reported to
            ``task_status``).
        host: the address to bind (loopback by default).
    """
    assert callable(render)
    listeners = await trio.open_tcp_listeners(port, host=host)
    task_status.started(listeners[0].socket.getsockname()[1])

    async def handle(stream: trio.SocketStream) -> None:
        try:
            async with stream:
                data = b""
                with trio.move_on_after(5):
                    while b"\r\n\r\n" not in data and len(data) < 16384:
                        chunk = await stream.receive_some(4096)
                        if not chunk:
                            return
                        data += chunk
                path = data.split(b" ", 2)[1] if data.count(b" ") >= 2 else b"/"
                if path.split(b"?")[0] == b"/metrics":
                    body = str(render()).encode()
                    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                else:
                    body = b"not found: try /metrics\n"
                    head = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
                head += b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
                await stream.send_all(head + body)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return

    await trio.serve_listeners(handle, listeners)
