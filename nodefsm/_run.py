"""Running the monitor from the command line: events out, live view, signals."""

from __future__ import annotations

import json
import math
import random
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import TextIO

import trio

from ._engine import TransitionRecord
from ._metrics import TransitionCounter, render_metrics, serve_metrics
from ._monitor import Monitor, MonitorConfig, Subscription, open_monitor
from ._view import event_line, render_table

__all__ = ["Output", "run_monitor"]

_CLEAR = "\x1b[H\x1b[2J"


class Output:
    """Where and how the monitor's findings are written.

    Args:
        out: the text stream (stdout).
        json_mode: one JSON object per transition, flushed at once.
        live: redraw a table in place (a terminal); otherwise plain lines.
    """

    def __init__(self, out: TextIO, *, json_mode: bool, live: bool) -> None:
        self.out = out
        self.json_mode = json_mode
        self.live = live and not json_mode
        self.recent: list[str] = []
        #: Names shown before node ids in tables (node id -> name).
        self.labels: dict[str, str] = {}

    def write_records(self, records: Sequence[TransitionRecord]) -> None:
        """Write a batch of records (called from a worker thread)."""
        if self.json_mode:
            text = "".join(
                json.dumps(r.to_json(), sort_keys=True) + "\n" for r in records
            )
        elif self.live:
            self.recent = ([event_line(r) for r in records] + self.recent)[:8]
            return
        else:
            text = "".join(event_line(r) + "\n" for r in records)
        self.out.write(text)
        self.out.flush()

    def redraw(self, monitor: Monitor, title: str) -> None:
        """Redraw the live table (terminal only)."""
        table = render_table(
            monitor.summary(), now=monitor.now(), title=title, labels=self.labels
        )
        events = "\n".join(self.recent)
        self.out.write(f"{_CLEAR}{table}\n\nrecent transitions:\n{events}\n")
        self.out.flush()


def _drain(events: Subscription) -> list[TransitionRecord]:
    batch: list[TransitionRecord] = []
    while True:
        try:
            batch.append(events.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
            return batch


def _deliver(
    batch: list[TransitionRecord],
    output: Output,
    counter: TransitionCounter,
    on_record: Callable[[TransitionRecord], None] | None,
) -> None:
    counter.add(batch)
    if on_record is not None:
        for record in batch:
            on_record(record)


async def _pump(
    events: Subscription,
    output: Output,
    counter: TransitionCounter,
    on_record: Callable[[TransitionRecord], None] | None,
) -> None:
    try:
        async for first in events:
            batch = [first, *_drain(events)]
            _deliver(batch, output, counter, on_record)
            # Writing may block on a full pipe; a worker thread keeps probes running.
            await trio.to_thread.run_sync(output.write_records, batch)
    finally:
        # On shutdown, write what is still buffered: no event is lost.
        rest = _drain(events)
        if rest:
            _deliver(rest, output, counter, on_record)
            output.write_records(rest)


async def _signals(scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            scope.cancel()
            return


async def run_monitor(
    urls: Sequence[str],
    *,
    config: MonitorConfig,
    output: Output,
    duration: float | None = None,
    metrics_port: int | None = None,
    rng: random.Random | None = None,
    handle_signals: bool = True,
    title: str = "nodefsm monitor",
    on_record: Callable[[TransitionRecord], None] | None = None,
    tasks: Sequence[Callable[[Monitor], Awaitable[None]]] = (),
    self_node: str | None = None,
) -> Monitor:
    """Monitor ``urls`` until ``duration`` passes or SIGINT/SIGTERM arrives.

    Args:
        urls: the nodes.
        config: the monitor's policies.
        output: where events and the view go.
        duration: stop after this many seconds (None: until a signal).
        metrics_port: serve Prometheus metrics on 127.0.0.1:PORT.
        rng: randomness for jitter and backoff.
        handle_signals: stop cleanly on SIGINT/SIGTERM.
        title: the live view's first line.
        on_record: called with every transition record.
        tasks: more tasks to run beside the monitor (e.g. discovery).
        self_node: an id for the monitor's own node (starting -> online,
            stopping on exit).

    Returns:
        The monitor (closed), for its final summary.
    """
    counter = TransitionCounter()
    async with open_monitor(
        urls, config=config, rng=rng, self_node=self_node
    ) as monitor:
        # Subscribed before anything else runs; kept open across the
        # monitor's shutdown so its last records (stopping) are written too.
        events = monitor.subscribe()
        with trio.CancelScope() as scope:
            if duration is not None:
                scope.deadline = trio.current_time() + duration
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_pump, events, output, counter, on_record)
                if handle_signals:
                    nursery.start_soon(_signals, scope)
                for task in tasks:
                    nursery.start_soon(task, monitor)
                if metrics_port is not None:
                    await nursery.start(
                        serve_metrics,
                        lambda: render_metrics(monitor.summary(), counter),
                        metrics_port,
                    )
                if output.live:
                    while True:
                        output.redraw(monitor, title)
                        await trio.sleep(0.5)
                await trio.sleep(math.inf)
    rest = _drain(events)  # what shutdown published (the self node stopping)
    if rest:
        _deliver(rest, output, counter, on_record)
        output.write_records(rest)
    final = render_table(
        monitor.summary(), now=monitor.now(), title="final state:", labels=output.labels
    )
    if output.live:
        output.redraw(monitor, title)
    if not output.json_mode:
        output.out.write("\n" + final + "\n")
        output.out.flush()
    return monitor
