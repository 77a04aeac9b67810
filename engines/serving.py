"""Run an aiohttp application on a local port."""

from dataclasses import dataclass

from aiohttp import web

# How long the server keeps an idle connection open; aiohttp's default unless set.
IDLE_CLOSE_S = web.AppKey("idle_close_s", float)
AIOHTTP_IDLE_CLOSE_S = 75.0
# What vLLM and Chatterbox's server do: uvicorn closes a connection idle for 5 s.
UVICORN_IDLE_CLOSE_S = 5.0


@dataclass
class ServedApp:
    """A running application and where it listens."""

    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        """Its base HTTP URL."""
        return f"http://{self.host}:{self.port}"

    async def close(self) -> None:
        """Stop listening and cancel in-flight handlers."""
        await self.runner.cleanup()


async def serve(app: web.Application, host: str = "127.0.0.1", port: int = 0) -> ServedApp:
    """Start an application; port 0 picks a free one."""
    runner = web.AppRunner(
        app,
        handle_signals=False,
        shutdown_timeout=0.5,
        keepalive_timeout=app.get(IDLE_CLOSE_S, AIOHTTP_IDLE_CLOSE_S),
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return ServedApp(runner=runner, host=host, port=runner.addresses[0][1])
