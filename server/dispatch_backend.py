"""`SESSION_BACKEND=dispatch`: bots run on worker hosts that LiveKit dispatches rooms to.

The session server keeps its bookkeeping (one bot per room, MAX_CONCURRENT_SESSIONS in
all, across every worker) and asks the SFU to dispatch `AGENT_NAME` to each room;
whichever worker host LiveKit picks runs the bot. `launch` returns once that bot has
reported it is in the room, so `/connect` can answer 503 when no worker took it.
"""

from fastapi import WebSocket
from livekit import api

from bot.launch import Assignment
from bot.settings import Settings
from server.dispatched_bot import DispatchedBot


class DispatchBackend:
    """Launches bots through LiveKit's agent dispatch and hears from them on websockets."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._leases: dict[str, DispatchedBot] = {}
        self._closed = False

    def _livekit(self) -> api.LiveKitAPI:
        return api.LiveKitAPI(
            self._settings.livekit_url,
            self._settings.livekit_api_key.get_secret_value(),
            self._settings.livekit_api_secret.get_secret_value(),
        )

    @property
    def standby_count(self) -> int:
        """None here: worker hosts keep their own idle processes."""
        return 0

    async def start(self) -> None:
        """Nothing to warm: worker hosts keep their own idle processes."""

    async def launch(self, assignment: Assignment) -> DispatchedBot:
        """A bot in the assignment's room; OSError (NoBotJoined) when none joined in time."""
        if self._closed:
            raise OSError("the server is shutting down")
        bot = DispatchedBot(
            self._settings, assignment, self._livekit, self._leases, lambda: not self._closed
        )
        await bot.dispatch_until_joined()
        return bot

    async def close(self) -> None:
        """Dispatch nothing more; bots already running are the session manager's to stop."""
        self._closed = True

    async def attach(
        self, socket: WebSocket, token: str, worker_id: str | None, pid: int | None
    ) -> None:
        """Serve one bot's control socket; refused (HTTP 403) when the token is unknown."""
        bot = self._leases.get(token)
        if bot is None:
            await socket.close(code=1008)
            return
        await bot.serve_socket(socket, worker_id, pid)
