"""Opening an engine's connection before the request that needs it.

By the time a turn's request goes out, the connection the last one used may be gone:
servers run under uvicorn (vLLM, Chatterbox's) close a connection idle for 5 s, sooner
than most turns come round (the bot's reply plays, then the user answers), and the
client drops its own idle ones after `KEEPALIVE_S`. A request on a new connection
first waits out the TCP and TLS handshakes, round trips to a remote engine, while the
user waits. A service that knows a request is coming calls `warm()`: if the connection
has been idle long enough to be gone, a cheap request (any answer will do) opens one in
the background, and the real request finds it in the pool.
"""

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

import aiohttp
from loguru import logger

# Warm once idle for this share of the idle close, so a request shortly after the warm
# never lands on a connection the server is closing.
WARM_AHEAD = 0.8
WARM_TIMEOUT_S = 5.0
# vLLM serves it; on a server without it the 404 warms the connection just as well.
HEALTH_PATH = "/health"


class ConnectionWarmer:
    """Sends `request` in the background when the engine's connection may have closed.

    `idle_close_s` is how long a connection may sit idle before one side closes it; 0
    means never, and nothing is ever sent. Before the first request it counts as closed.
    """

    def __init__(
        self, request: Callable[[], Awaitable[object]], *, idle_close_s: float, name: str
    ) -> None:
        self._request = request
        self._stale_after_s = idle_close_s * WARM_AHEAD if idle_close_s > 0 else math.inf
        self._name = name
        self._last_used = -math.inf
        self._task: asyncio.Task | None = None

    def used(self) -> None:
        """A request just ended on a kept-alive connection: its idle time starts now."""
        self._last_used = time.monotonic()

    def lost(self) -> None:
        """A request's connection was closed (an interrupted reply): the next one opens anew."""
        self._last_used = -math.inf

    def warm(self) -> None:
        """Open a connection in the background, unless one is fresh or being opened."""
        if self._task is not None and not self._task.done():
            return
        if time.monotonic() - self._last_used < self._stale_after_s:
            return
        self._task = asyncio.get_running_loop().create_task(self._open())

    async def close(self) -> None:
        """Abandon a warm-up still under way."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _open(self) -> None:
        try:
            await asyncio.wait_for(self._request(), WARM_TIMEOUT_S)
        except Exception as e:  # best effort: the real request reports its own failures
            logger.debug(f"{self._name}: warming the connection failed: {e!r}")
            return
        self.used()


def http_warmer(
    session: aiohttp.ClientSession,
    base_url: str,
    headers: dict[str, str],
    *,
    idle_close_s: float,
    name: str,
) -> ConnectionWarmer:
    """A warmer for an engine `session` reaches at `base_url`: it asks for `/health`."""
    url = base_url.rstrip("/") + HEALTH_PATH

    async def ask_health() -> None:
        async with session.get(url, headers=headers) as response:
            await response.read()  # read to its end, the connection goes back to the pool

    return ConnectionWarmer(ask_health, idle_close_s=idle_close_s, name=name)
