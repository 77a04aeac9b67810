"""uvicorn with a drain: the first stop signal lets conversations finish while it still answers.

Plain uvicorn closes its listening socket as soon as SIGTERM arrives, so during a drain
new callers would meet a refused connection instead of a 503 with Retry-After that a
client or load balancer can act on. Here the first SIGTERM/SIGINT runs `drain` while
the server keeps serving; when it is done, or at the next signal, uvicorn shuts down
as usual (the app's lifespan then stops whatever is left).
"""

import asyncio
import socket
from collections.abc import Awaitable, Callable
from types import FrameType

import uvicorn


class DrainingServer(uvicorn.Server):
    """A `uvicorn.Server` whose first stop signal drains before shutting down."""

    def __init__(self, config: uvicorn.Config, drain: Callable[[], Awaitable[None]]) -> None:
        super().__init__(config)
        self._drain = drain
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_requested = False
        self._draining: asyncio.Task[None] | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        """Serve, remembering the loop the drain will run on."""
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """First signal once serving: drain. Any other: uvicorn's own handling."""
        if self._drain_requested or not self.started or self._loop is None:
            super().handle_exit(sig, frame)
            return
        self._drain_requested = True
        # A signal handler may run between any two bytecodes: hand over to the loop.
        self._loop.call_soon_threadsafe(self._start_drain)

    def _start_drain(self) -> None:
        self._draining = asyncio.get_running_loop().create_task(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        try:
            await self._drain()
        finally:
            self.should_exit = True
