"""Tiny trio servers on loopback that misbehave on purpose (test helpers)."""

from __future__ import annotations

import functools
import json
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import trio

Handler = Callable[[trio.SocketStream], Awaitable[None]]


@asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[int]:
    """Serve ``handler`` on 127.0.0.1 on a free port; yield the port."""
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, handler, 0, host="127.0.0.1")
        )
        yield listeners[0].socket.getsockname()[1]
        nursery.cancel_scope.cancel()


def closed_port() -> int:
    """A loopback port with nothing listening on it (connect is refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


async def read_request(stream: trio.SocketStream) -> bytes:
    """Read until the end of the request head."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(65536)
        if not chunk:
            break
        data += chunk
    return data


def http_response(
    status: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    """A complete HTTP/1.1 response with Content-Length and Connection: close."""
    head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def respond(
    status: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> Handler:
    """A handler that answers every request with the same response."""

    async def handler(stream: trio.SocketStream) -> None:
        await read_request(stream)
        await stream.send_all(http_response(status, body, headers))
        await stream.aclose()

    return handler


def respond_json(obj: object, status: int = 200) -> Handler:
    """A handler that answers with ``obj`` as JSON."""
    return respond(
        status, json.dumps(obj).encode(), {"Content-Type": "application/json"}
    )


async def hang(stream: trio.SocketStream) -> None:
    """Accept and never answer."""
    await trio.sleep_forever()


async def reset(stream: trio.SocketStream) -> None:
    """Read the request, then reset the connection (SO_LINGER 0)."""
    await read_request(stream)
    stream.socket.setsockopt(
        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
    )
    stream.socket.close()


async def garbage(stream: trio.SocketStream) -> None:
    """Answer with bytes that are not HTTP."""
    await read_request(stream)
    await stream.send_all(b"this is not http at all\r\n\r\n")
    await stream.aclose()


async def close_midway(stream: trio.SocketStream) -> None:
    """Promise a body of 100 bytes, send 5, then close."""
    await read_request(stream)
    await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello")
    await stream.aclose()


async def close_at_once(stream: trio.SocketStream) -> None:
    """Accept, then close without a word (a cut TLS handshake for TLS clients)."""
    await stream.aclose()
