"""A loopback TCP server that can stop listening and listen again on its port.

The fake node and the fault proxy both need this: "down" means connections
are refused (no listener), and coming back means the same port again.
"""

from __future__ import annotations

import trio

__all__ = ["RestartableServer"]


class RestartableServer:
    """Serve ``_handle`` on ``host:port``; ``port=0`` picks a free port, kept after.

    Subclasses implement ``async def _handle(self, stream)``.
    """

    def __init__(self, *, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._nursery: trio.Nursery | None = None
        self._scope: trio.CancelScope | None = None

    @property
    def url(self) -> str:
        """``http://host:port``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def node(self) -> str:
        """The node id a monitor gives it (``host:port``)."""
        return self.url.removeprefix("http://")

    @property
    def running(self) -> bool:
        """Whether it is accepting connections."""
        return self._scope is not None

    async def start(self, nursery: trio.Nursery) -> None:
        """Listen (on the same port as before, if it ran already)."""
        self._nursery = nursery
        await nursery.start(self._serve)

    async def _close_listener(self) -> None:
        """Close the listener and every connection: connects are refused."""
        if self._scope is not None:
            self._scope.cancel()
            self._scope = None
        await trio.lowlevel.checkpoint()

    async def _listen_again(self) -> None:
        if self._scope is None:
            assert self._nursery is not None, "start() first"
            await self._nursery.start(self._serve)

    async def _serve(
        self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        listeners = await trio.open_tcp_listeners(self.port, host=self.host)
        self.port = listeners[0].socket.getsockname()[1]
        with trio.CancelScope() as scope:
            self._scope = scope
            async with trio.open_nursery() as conns:
                task_status.started()
                async with listeners[0]:
                    while True:
                        stream = await listeners[0].accept()
                        conns.start_soon(self._handle, stream)
        if self._scope is scope:
            self._scope = None

    async def _handle(self, stream: trio.SocketStream) -> None:
        raise NotImplementedError
