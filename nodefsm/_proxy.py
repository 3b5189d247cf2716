"""A fault-injecting TCP proxy on trio (what Toxiproxy does), for loopback tests.

Put it between the monitor and a node; change its faults at run time::

    proxy = FaultProxy("127.0.0.1", node_port)
    await proxy.start(nursery)
    proxy.faults.mode = ProxyMode.BLACKHOLE     # accept, never answer
    proxy.faults.downstream.latency = 0.5        # add 500 ms to answers
    await proxy.refuse()                         # connections refused
    await proxy.accept()                         # and back

Faults: added latency and jitter per direction, slow transfer (bytes per
second), cut after N bytes, black hole, reset, refuse, and a per-connection
loss probability (a lost connection is black-holed).
"""

from __future__ import annotations

import enum
import random
import socket
import struct

import attrs
import trio

from ._listener import RestartableServer

__all__ = ["Direction", "FaultProxy", "ProxyFaults", "ProxyMode"]


class ProxyMode(enum.StrEnum):
    """What the proxy does with a new connection."""

    PASS = "pass"
    BLACKHOLE = "blackhole"
    RESET = "reset"


@attrs.define
class Direction:
    """Faults for one direction (``upstream``: to the node; ``downstream``: back).

    Attributes:
        latency: seconds added before each chunk is forwarded.
        jitter: up to this many seconds more, uniformly drawn.
        rate: bytes per second (slow body), or None for full speed.
        cut_after: close both sides after this many bytes, or None.
    """

    latency: float = 0.0
    jitter: float = 0.0
    rate: float | None = None
    cut_after: int | None = None


@attrs.define
class ProxyFaults:
    """The proxy's current faults; mutate at any time."""

    mode: ProxyMode = ProxyMode.PASS
    loss: float = 0.0
    upstream: Direction = attrs.field(factory=Direction)
    downstream: Direction = attrs.field(factory=Direction)

    def clear(self) -> None:
        """Back to a transparent proxy."""
        self.mode = ProxyMode.PASS
        self.loss = 0.0
        self.upstream = Direction()
        self.downstream = Direction()


def _rst(stream: trio.SocketStream) -> None:
    stream.socket.setsockopt(
        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
    )
    stream.socket.close()


class FaultProxy(RestartableServer):
    """A TCP proxy on loopback in front of ``upstream_host:upstream_port``.

    Args:
        upstream_host, upstream_port: where connections are forwarded.
        host: the loopback address to listen on.
        port: the port (0: any free port, kept across refuse/accept).
        rng: randomness for jitter and loss (seed it for reproducible runs).
    """

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(host=host, port=port)
        self.upstream = (upstream_host, upstream_port)
        self.faults = ProxyFaults()
        self.rng = rng or random.Random()
        #: Connections accepted, and how many were black-holed by loss.
        self.connections = 0
        self.lost = 0

    @property
    def refusing(self) -> bool:
        """True while connections are refused (no listener)."""
        return not self.running

    async def refuse(self) -> None:
        """Close the listener and every proxied connection: connects are refused."""
        await self._close_listener()

    async def accept(self) -> None:
        """Listen again on the same port (after :meth:`refuse`)."""
        await self._listen_again()

    async def _handle(self, stream: trio.SocketStream) -> None:
        client = stream
        self.connections += 1
        faults = self.faults
        try:
            if faults.mode is ProxyMode.BLACKHOLE or (
                faults.loss > 0 and self.rng.random() < faults.loss
            ):
                if faults.mode is not ProxyMode.BLACKHOLE:
                    self.lost += 1
                async with client:
                    while await client.receive_some(65536):
                        pass
                    await trio.sleep_forever()
            if faults.mode is ProxyMode.RESET:
                with trio.move_on_after(1):
                    await client.receive_some(65536)
                _rst(client)
                return
            try:
                server = await trio.open_tcp_stream(*self.upstream)
            except OSError:
                _rst(client)
                return
            async with client, server, trio.open_nursery() as nursery:
                nursery.start_soon(
                    self._pump, client, server, "upstream", nursery.cancel_scope
                )
                nursery.start_soon(
                    self._pump, server, client, "downstream", nursery.cancel_scope
                )
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return

    async def _pump(
        self,
        source: trio.SocketStream,
        sink: trio.SocketStream,
        direction: str,
        scope: trio.CancelScope,
    ) -> None:
        sent = 0
        try:
            while True:
                settings: Direction = getattr(self.faults, direction)
                size = 1024 if settings.rate else 65536
                chunk = await source.receive_some(size)
                if not chunk:
                    await sink.send_eof()
                    return
                delay = settings.latency + (
                    self.rng.uniform(0, settings.jitter) if settings.jitter else 0.0
                )
                if settings.rate:
                    delay += len(chunk) / settings.rate
                if delay > 0:
                    await trio.sleep(delay)
                if (
                    settings.cut_after is not None
                    and sent + len(chunk) > settings.cut_after
                ):
                    await sink.send_all(chunk[: max(0, settings.cut_after - sent)])
                    scope.cancel()
                    return
                await sink.send_all(chunk)
                sent += len(chunk)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            scope.cancel()
