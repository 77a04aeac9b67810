"""One room's bot on a worker host, as the session server sees it through LiveKit.

The SFU schedules the bot (`create_dispatch`); the bot reports on its control socket
(`bot/control_socket.py`). The open-source livekit-server neither queues a dispatch no
worker took nor re-dispatches the job of a worker that died, so this does both: a
dispatch no worker accepted is retried until `BOT_START_TIMEOUT_S`, and when a bot's
socket drops without it having said the conversation ended (or after it said its worker
stopped it) while a user is still in the room, another bot is dispatched there; it
resumes the saved conversation.
"""

import asyncio
import secrets
import time
from collections.abc import Callable

import aiohttp
from fastapi import WebSocket, WebSocketDisconnect
from livekit import api
from loguru import logger

from bot.control import ControlMessage
from bot.control_socket import ControlAddress
from bot.launch import Assignment
from bot.settings import Settings
from server.bot_backend import Pool
from server.bot_status import BotStatus

# How long a dispatch may go without a worker accepting its job before it is retried.
# A job the SFU places is accepted within ~0.25 s even on a loaded machine; one it
# could not place (the node it picked had no worker with room: a burst reserves
# capacity per pending request) is dropped without a trace, so waiting longer only
# delays the retry.
ASSIGNMENT_WAIT_S = 1.5
POLL_S = 0.25
LiveKitCall = Callable[[], api.LiveKitAPI]
IsOpen = Callable[[], bool]


class NoBotJoined(OSError):
    """No worker took the room, or its bot never reported, within BOT_START_TIMEOUT_S."""


class DispatchedBot:
    """A `BotHandle` for a bot LiveKit dispatched to some worker host.

    `wait()` returns once the conversation is over: the bot said it ended, it was
    stopped, or it died with nobody left in the room to carry on for.
    """

    def __init__(
        self,
        settings: Settings,
        assignment: Assignment,
        livekit: LiveKitCall,
        leases: dict[str, "DispatchedBot"],
        accepting: IsOpen,
    ) -> None:
        self._settings = settings
        self._assignment = assignment
        self._livekit = livekit
        self._leases = leases
        self._accepting = accepting
        self._log = logger.bind(room=assignment.room)
        self._dispatch_id: str | None = None
        self._token = ""
        self._connected = asyncio.Event()
        self._socket_closed = asyncio.Event()
        self._done = asyncio.Event()
        self._code = 0
        self.status = BotStatus()
        self.stop_requested = False
        self.pool: Pool = "dispatched"
        self.worker_id: str | None = None
        self.redispatches = 0
        self._pid: int | None = None
        self._lost_at: float | None = None
        self._replacing: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        """The job process's pid on its worker host, as the bot reported it."""
        return self._pid

    @property
    def room(self) -> str:
        """The room this bot serves."""
        return self._assignment.room

    async def wait(self) -> int:
        """Wait until the conversation is over; 0 when it ended normally."""
        await self._done.wait()
        return self._code

    async def stop(self, grace_s: float) -> int:
        """Take the bot out of the room and withdraw its dispatch."""
        self.stop_requested = True
        if not self._done.is_set():
            await self._remove_from_room()
            await self._withdraw()
            try:
                await asyncio.wait_for(self._socket_closed.wait(), grace_s)
            except TimeoutError:
                self._log.warning(f"The bot's control socket was still open after {grace_s:.0f}s")
            self._finish(0)
        return self._code

    async def dispatch_until_joined(self) -> None:
        """Dispatch the room until a bot reports it joined, within BOT_START_TIMEOUT_S.

        Raises:
            NoBotJoined: nothing joined in time; no dispatch is left behind.
        """
        deadline = time.monotonic() + self._settings.bot_start_timeout_s
        while True:
            await self._dispatch()
            remaining = deadline - time.monotonic()
            if await self._accepted(min(ASSIGNMENT_WAIT_S, remaining)):
                remaining = deadline - time.monotonic()
                if await self.status.joined_within(remaining):
                    return
                break
            remaining = deadline - time.monotonic()
            if remaining <= POLL_S:
                break
            self._log.info("No worker took the room; dispatching it again")
            await self._withdraw()
        await self._withdraw()
        raise NoBotJoined(
            f"no bot joined within {self._settings.bot_start_timeout_s:.0f}s "
            f"(is a worker host registered as {self._settings.agent_name!r}?)"
        )

    async def serve_socket(self, socket: WebSocket, worker_id: str | None, pid: int | None) -> None:
        """Read the bot's control messages until its socket closes."""
        self.worker_id, self._pid = worker_id, pid
        self._socket_closed.clear()
        self._connected.set()
        await socket.accept()
        try:
            while True:
                line = await socket.receive_text()
                try:
                    self.status.apply(ControlMessage.from_line(line.encode()))
                except ValueError:
                    self._log.warning("Ignored a malformed control message")
        except WebSocketDisconnect:
            pass
        finally:
            self._connected.clear()
            self._socket_closed.set()
        if not (self._done.is_set() or self.stop_requested):
            # Its own task: replacing the bot outlives this socket's handler.
            self._replacing = asyncio.create_task(self._socket_dropped())

    async def _socket_dropped(self) -> None:
        stopped = self.status.end_reason == "worker_stopped"
        if self.status.end_reason is not None and not stopped:
            self._finish(0 if self.status.failure is None else 1)
            return
        self._lost_at = time.monotonic()
        gone = "Its worker stopped the bot" if stopped else "The bot vanished"
        if not self._accepting():
            self._log.warning(f"{gone} while the server shuts down; not replacing it")
            self._finish(1)
            return
        if not await self._someone_waiting():
            self._log.warning(f"{gone}; nobody is left in the room")
            self._finish(1)
            return
        why = "(its drain ran out)" if stopped else "(its worker died?)"
        self._log.warning(f"{gone} mid-conversation {why}; replacing it")
        await self._remove_from_room()
        await self._withdraw()
        self.status = BotStatus()
        self.redispatches += 1
        try:
            await self.dispatch_until_joined()
        except NoBotJoined as e:
            self._log.error(f"Could not replace the bot: {e}")
            self._finish(1)
            return
        self._log.info(f"Replacement bot joined {time.monotonic() - self._lost_at:.2f}s after")

    async def _dispatch(self) -> None:
        self._token = secrets.token_urlsafe(24)
        self._leases[self._token] = self
        address = ControlAddress(self._settings.control_url, self._token)
        request = api.CreateAgentDispatchRequest(
            agent_name=self._settings.agent_name,
            room=self.room,
            metadata=address.to_metadata(self._assignment.trace_context),
        )
        try:
            async with self._livekit() as livekit:
                dispatch = await livekit.agent_dispatch.create_dispatch(request)
        except (api.TwirpError, aiohttp.ClientError) as e:
            raise NoBotJoined(f"LiveKit refused the dispatch: {e}") from None
        self._dispatch_id = dispatch.id

    async def _accepted(self, within_s: float) -> bool:
        """Whether a worker accepted the current dispatch's job within `within_s`."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if self._connected.is_set() or await self._has_job():
                return True
            await asyncio.sleep(POLL_S)
        # A bot that reported during the last sleep counts: withdrawing now would leave it
        # in the room next to the replacement.
        return self._connected.is_set()

    async def _has_job(self) -> bool:
        try:
            async with self._livekit() as livekit:
                dispatches = await livekit.agent_dispatch.list_dispatch(self.room)
        except (api.TwirpError, aiohttp.ClientError):
            return False
        return any(d.id == self._dispatch_id and d.state.jobs for d in dispatches)

    async def _someone_waiting(self) -> bool:
        """Whether anyone but an agent is still in the room."""
        try:
            async with self._livekit() as livekit:
                listed = await livekit.room.list_participants(
                    api.ListParticipantsRequest(room=self.room)
                )
        except (api.TwirpError, aiohttp.ClientError) as e:
            self._log.warning(f"Could not list the room's participants: {e}")
            return False
        return any(p.kind != api.ParticipantInfo.Kind.AGENT for p in listed.participants)

    async def _remove_from_room(self) -> None:
        """Disconnect the bot's participant (a dead one lingers until its ICE times out)."""
        request = api.RoomParticipantIdentity(room=self.room, identity=self._settings.bot_identity)
        try:
            async with self._livekit() as livekit:
                await livekit.room.remove_participant(request)
        except (api.TwirpError, aiohttp.ClientError):
            pass  # not in the room (any more)

    async def _withdraw(self) -> None:
        """Delete the current dispatch, so LiveKit starts nothing more for it."""
        self._leases.pop(self._token, None)
        dispatch_id, self._dispatch_id = self._dispatch_id, None
        if dispatch_id is None:
            return
        try:
            async with self._livekit() as livekit:
                await livekit.agent_dispatch.delete_dispatch(dispatch_id, self.room)
        except (api.TwirpError, aiohttp.ClientError):
            pass  # the room is gone, and its dispatches with it

    def _finish(self, code: int) -> None:
        self._leases.pop(self._token, None)
        if not self._done.is_set():
            self._code = code
            self._done.set()
