"""Test kit: a fake Ollama node and a fault-injecting proxy, on loopback.

``FakeNode`` speaks enough of Ollama's API for every probe profile
(``/api/version``, ``/api/ps``, ``/api/tags`` and the seed's ``/api/health``)
and misbehaves on demand: refuse connections (listener closed), hang
(accept, never answer), answer slowly, reset, answer with any status (503
with ``Retry-After``...), send invalid JSON, wrong fields or bytes that are
not HTTP, or report overload. The fault can be changed while it runs::

    async with fake_node() as node:
        async with open_monitor([node.url]) as monitor:
            ...
            node.fault = Fault.hang()
            ...
            await node.stop()      # connections are refused now
            await node.restart()   # same port, healthy again
"""

from __future__ import annotations

import enum
import json
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from ._listener import RestartableServer
from ._proxy import Direction, FaultProxy, ProxyFaults, ProxyMode

__all__ = [
    "Direction",
    "FakeNode",
    "Fault",
    "FaultKind",
    "FaultProxy",
    "ProxyFaults",
    "ProxyMode",
    "fake_node",
]


class FaultKind(enum.StrEnum):
    """What the fake node does with a request."""

    NONE = "none"
    HANG = "hang"
    SLOW = "slow"
    RESET = "reset"
    STATUS = "status"
    BAD_JSON = "bad_json"
    WRONG_FIELDS = "wrong_fields"
    GARBAGE = "garbage"
    OVERLOADED = "overloaded"


@attrs.frozen
class Fault:
    """A fault setting. Build with the class methods."""

    kind: FaultKind = FaultKind.NONE
    delay: float = 0.0
    status: int = 200
    retry_after: str | None = None

    @classmethod
    def none(cls) -> Fault:
        """Healthy answers."""
        return cls()

    @classmethod
    def hang(cls) -> Fault:
        """Accept, read the request, never answer."""
        return cls(FaultKind.HANG)

    @classmethod
    def slow(cls, delay: float) -> Fault:
        """Answer correctly after ``delay`` seconds."""
        return cls(FaultKind.SLOW, delay=delay)

    @classmethod
    def reset(cls) -> Fault:
        """Read the request, then reset the connection (RST)."""
        return cls(FaultKind.RESET)

    @classmethod
    def http_status(cls, status: int, *, retry_after: str | None = None) -> Fault:
        """Answer every request with ``status`` (and ``Retry-After``)."""
        return cls(FaultKind.STATUS, status=status, retry_after=retry_after)

    @classmethod
    def overloaded(cls) -> Fault:
        """Answer, but report 95 % CPU and 20 active requests in /api/health."""
        return cls(FaultKind.OVERLOADED)

    @classmethod
    def bad_json(cls) -> Fault:
        """Answer 200 with a body that is not JSON."""
        return cls(FaultKind.BAD_JSON)

    @classmethod
    def wrong_fields(cls) -> Fault:
        """Answer 200 with JSON whose fields are wrong."""
        return cls(FaultKind.WRONG_FIELDS)

    @classmethod
    def garbage(cls) -> Fault:
        """Answer with bytes that are not HTTP."""
        return cls(FaultKind.GARBAGE)


def _response(status: int, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {'OK' if status < 400 else 'Error'}",
        f"Content-Length: {len(body)}",
        "Content-Type: application/json",
        "Connection: close",
    ]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class FakeNode(RestartableServer):
    """A fake Ollama node on loopback.

    Args:
        host: the loopback address to listen on.
        port: the port (0: any free port, kept across stop/restart).
        version: what ``/api/version`` reports.
        models: names of the loaded models (``/api/ps``, ``/api/tags``).
        node_id: the ``node_id`` of ``/api/health``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        version: str = "0.5.7",
        models: tuple[str, ...] = ("llama3.2:1b",),
        node_id: str | None = None,
    ) -> None:
        super().__init__(host=host, port=port)
        self.version = version
        self.models = models
        self.node_id = node_id
        #: The current fault; assign at any time.
        self.fault = Fault.none()
        #: Requests received (all paths).
        self.requests = 0
        #: The headers of the last request (names lower-cased).
        self.last_headers: dict[str, str] = {}

    async def stop(self) -> None:
        """Close the listener and every connection: connects are refused."""
        await self._close_listener()

    async def restart(self) -> None:
        """Stop, then listen again on the same port, healthy."""
        await self.stop()
        self.fault = Fault.none()
        await self._listen_again()

    async def _read_request(self, stream: trio.SocketStream) -> str | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(65536)
            if not chunk:
                return None
            data += chunk
            if len(data) > 65536:
                return None
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        line = head[0]
        self.last_headers = {
            k.strip().lower(): v.strip()
            for k, _, v in (h.partition(":") for h in head[1:])
        }
        parts = line.split()
        return parts[1] if len(parts) >= 2 else "/"

    def _body(self, path: str, fault: Fault) -> tuple[int, bytes]:
        if fault.kind is FaultKind.BAD_JSON:
            return 200, b'{"version": "0.5'
        if fault.kind is FaultKind.WRONG_FIELDS:
            return 200, json.dumps(
                {"versio": 5, "cpu_usage_percent": "high", "models": 3}
            ).encode()
        overloaded = fault.kind is FaultKind.OVERLOADED
        data: dict[str, Any]
        path = path.split("?", 1)[0]
        if path == "/api/version":
            data = {"version": self.version}
        elif path == "/api/ps":
            data = {
                "models": [
                    {"name": m, "size": 2_000_000_000, "size_vram": 1_500_000_000}
                    for m in self.models
                ]
            }
        elif path == "/api/tags":
            data = {"models": [{"name": m, "size": 2_000_000_000} for m in self.models]}
        elif path == "/api/health":
            data = {
                "node_id": self.node_id or self.node,
                "status": "online",
                "cpu_usage_percent": 95.0 if overloaded else 12.5,
                "memory_usage_mb": 4096.0,
                "gpu_utilization": [88.0 if overloaded else 10.0],
                "gpu_memory_usage_mb": [6000.0],
                "active_requests": 20 if overloaded else 1,
                "queued_requests": 7 if overloaded else 0,
                "latency_ms": 3.0,
                "model_load_count": len(self.models),
            }
        elif path == "/":
            data = {"ok": True}
        else:
            return 404, b'{"error": "not found"}'
        return 200, json.dumps(data).encode()

    async def _handle(self, stream: trio.SocketStream) -> None:
        try:
            async with stream:
                path = await self._read_request(stream)
                if path is None:
                    return
                self.requests += 1
                fault = self.fault
                if fault.kind is FaultKind.HANG:
                    await trio.sleep_forever()
                if fault.kind is FaultKind.RESET:
                    linger = struct.pack("ii", 1, 0)
                    stream.socket.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, linger
                    )
                    stream.socket.close()
                    return
                if fault.kind is FaultKind.GARBAGE:
                    await stream.send_all(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
                    return
                if fault.kind is FaultKind.SLOW:
                    await trio.sleep(fault.delay)
                if fault.kind is FaultKind.STATUS:
                    headers = (
                        {"Retry-After": fault.retry_after}
                        if fault.retry_after
                        else None
                    )
                    body = b'{"error": "busy"}'
                    await stream.send_all(_response(fault.status, body, headers))
                    return
                status, body = self._body(path, fault)
                await stream.send_all(_response(status, body))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return


@asynccontextmanager
async def fake_node(**kwargs: Any) -> AsyncIterator[FakeNode]:
    """Run a :class:`FakeNode` for the block (keyword arguments as FakeNode's)."""
    node = FakeNode(**kwargs)
    async with trio.open_nursery() as nursery:
        await node.start(nursery)
        try:
            yield node
        finally:
            await node.stop()
            nursery.cancel_scope.cancel()
