"""The control channel of a bot on a worker host: a websocket to the session server.

A dispatched bot has no pipe to the server that asked for it, so it opens this socket
as soon as its job starts and sends the same control messages a local bot writes to
its pipe (`bot/control.py`). The socket itself matters too: it closes the moment the
bot's process dies, so the server notices a dead worker in well under a second, where
the SFU only drops the silent participant after its ICE timeouts (15 s and more).
"""

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import aiohttp
from loguru import logger

from bot.control import ControlMessage, EndReason, ErrorReason, NoControl

CONNECT_TIMEOUT_S = 3.0
# The server's answer to a token it no longer knows: the dispatch was withdrawn.
WITHDRAWN_STATUS = 403
# Pings keep a half-open connection (a machine gone from the network) from looking alive;
# a pong may take half of this. A process that dies closes its socket at once anyway, and a
# busy event loop (seconds, on an overloaded host) must not look like a dead bot.
HEARTBEAT_S = 10.0


@dataclass(frozen=True)
class ControlAddress:
    """Where and how to report, as the session server put it in the dispatch's metadata."""

    url: str
    token: str

    def to_metadata(self, trace_context: dict[str, str]) -> str:
        """The dispatch metadata carrying this address and the trace to join."""
        return json.dumps(
            {"control_url": self.url, "control_token": self.token, "trace_context": trace_context}
        )

    @staticmethod
    def from_metadata(metadata: str) -> tuple["ControlAddress | None", dict[str, str]]:
        """The address and trace context in a job's metadata (None, {} when absent)."""
        try:
            body: Any = json.loads(metadata) if metadata else {}
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        trace = body.get("trace_context")
        trace_context = trace if isinstance(trace, dict) else {}
        url, token = body.get("control_url"), body.get("control_token")
        if isinstance(url, str) and isinstance(token, str):
            return ControlAddress(url, token), trace_context
        return None, trace_context


class SocketControl(NoControl):
    """Control messages over a websocket; they are sent in order by one task."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket
        self._outbox: asyncio.Queue[ControlMessage | None] = asyncio.Queue()
        self._sender = asyncio.create_task(self._send_all())
        self._reader = asyncio.create_task(self._read_all())

    @classmethod
    async def connect(
        cls, http: aiohttp.ClientSession, address: ControlAddress, **identity: str
    ) -> NoControl | None:
        """Open the channel; None when the server withdrew this dispatch.

        With no server to reach, the bot still serves its room, reporting nothing.
        `identity` (worker id, pid) is shown in the server's `/sessions`.
        """
        try:
            socket = await asyncio.wait_for(
                http.ws_connect(
                    address.url, params={"token": address.token, **identity}, heartbeat=HEARTBEAT_S
                ),
                CONNECT_TIMEOUT_S,
            )
        except aiohttp.WSServerHandshakeError as e:
            if e.status == WITHDRAWN_STATUS:
                return None
            logger.error(f"The session server refused the control channel ({e.status})")
            return NoControl()
        except (aiohttp.ClientError, TimeoutError) as e:
            logger.error(f"Could not reach the session server's control channel: {e}")
            return NoControl()
        return cls(socket)

    def joined(self) -> None:
        """The bot is in its room."""
        self._outbox.put_nowait(ControlMessage("joined"))

    def ended(self, reason: EndReason) -> None:
        """The session is over, for `reason`."""
        self._outbox.put_nowait(ControlMessage("ended", reason=reason))

    def error(self, reason: ErrorReason, detail: str) -> None:
        """Something failed; `detail` is one sentence for operators."""
        self._outbox.put_nowait(ControlMessage("error", reason=reason, detail=detail))

    async def close(self) -> None:
        """Send what is queued, then close the socket."""
        self._outbox.put_nowait(None)
        await self._sender
        await self._socket.close()
        self._reader.cancel()

    async def _read_all(self) -> None:
        # The server sends nothing but pings, which aiohttp answers only while reading:
        # unanswered, they would make the server close the socket after 40 s.
        async for _ in self._socket:
            pass

    async def _send_all(self) -> None:
        while (message := await self._outbox.get()) is not None:
            try:
                await self._socket.send_str(message.to_line().decode().strip())
            except (aiohttp.ClientError, ConnectionError) as e:
                logger.warning(f"The session server's control channel is gone ({e})")
                return
