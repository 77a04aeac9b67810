"""Which bot serves which room: at most one per room, a bounded number in all.

Every bot is supervised from spawn to reaping: a bot that exits or crashes frees its
slot at once, one that never joins its room is killed after `BOT_START_TIMEOUT_S`, and
shutdown leaves no child behind.
"""

import asyncio
import shlex
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from loguru import logger

from bot.settings import Settings
from server.bot_environment import bot_environment
from server.bot_process import BotProcess

CAPACITY_RETRY_AFTER_S = 10


class RoomBusy(Exception):
    """Another identity already holds a conversation in this room."""


class AtCapacity(Exception):
    """Every bot slot is taken."""


class ShuttingDown(Exception):
    """The server no longer takes sessions."""


class BotStartFailed(Exception):
    """The bot command could not be started."""


@dataclass
class Session:
    """One conversation: a room, the person in it, and the bot serving it."""

    room: str
    identity: str
    bot: BotProcess
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started_monotonic: float = field(default_factory=time.monotonic)

    @property
    def state(self) -> Literal["starting", "running"]:
        """`running` once the bot has joined its room."""
        return "running" if self.bot.joined.is_set() else "starting"


def bot_argv(command: str) -> list[str]:
    """Split `BOT_COMMAND`; a leading `python` means this server's own interpreter."""
    argv = shlex.split(command)
    if argv[0] in {"python", "python3"}:
        argv[0] = sys.executable
    return argv


class SessionManager:
    """Starts, tracks and stops the bot processes, one per room."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._argv = bot_argv(settings.bot_command)
        self._env = bot_environment(settings)
        self._sessions: dict[str, Session] = {}
        self._supervisors: set[asyncio.Task[None]] = set()
        self._accepting = True

    @property
    def accepting(self) -> bool:
        """False once shutdown has begun."""
        return self._accepting

    @property
    def has_capacity(self) -> bool:
        """Whether a new session could start now."""
        return self._accepting and len(self._sessions) < self._settings.max_concurrent_sessions

    def sessions(self) -> list[Session]:
        """Every live session, oldest first."""
        return sorted(self._sessions.values(), key=lambda s: s.started_monotonic)

    def get(self, room: str) -> Session | None:
        """The session in `room`, if any."""
        return self._sessions.get(room)

    async def open(self, room: str, identity: str) -> Session:
        """The room's session for `identity`, starting a bot when none serves the room.

        Raises:
            RoomBusy: the room's conversation belongs to another identity.
            AtCapacity: every slot is taken.
            ShuttingDown: the server is stopping.
            BotStartFailed: the bot command could not be run.
        """
        if not self._accepting:
            raise ShuttingDown
        existing = self._sessions.get(room)
        if existing is not None:
            if existing.identity != identity:
                raise RoomBusy
            return existing
        if len(self._sessions) >= self._settings.max_concurrent_sessions:
            raise AtCapacity
        bot = BotProcess(self._argv + ["--room", room], self._env, room=room)
        session = Session(room=room, identity=identity, bot=bot)
        # Claimed before the first await, so a concurrent call sees the room as taken.
        self._sessions[room] = session
        try:
            await bot.start()
        except OSError as e:
            del self._sessions[room]
            logger.bind(room=room).error(f"Could not start the bot: {e.strerror or e}")
            raise BotStartFailed from None
        logger.bind(room=room, session_id=session.session_id, pid=bot.pid).info("Bot started")
        supervisor = asyncio.create_task(self._supervise(session))
        self._supervisors.add(supervisor)
        supervisor.add_done_callback(self._supervisors.discard)
        return session

    async def end(self, room: str) -> bool:
        """Stop the room's bot and free its slot; False when the room has no session."""
        session = self._sessions.get(room)
        if session is None:
            return False
        await session.bot.stop(self._settings.bot_stop_grace_s)
        self._release(session)
        return True

    async def shutdown(self) -> None:
        """Refuse new sessions, stop every bot (SIGTERM, then SIGKILL), reap them all."""
        self._accepting = False
        grace = self._settings.bot_stop_grace_s
        await asyncio.gather(*(s.bot.stop(grace) for s in list(self._sessions.values())))
        await asyncio.gather(*self._supervisors, return_exceptions=True)

    async def _supervise(self, session: Session) -> None:
        log = logger.bind(room=session.room, session_id=session.session_id)
        exited = asyncio.create_task(session.bot.wait())
        joined = asyncio.create_task(session.bot.joined.wait())
        timeout = self._settings.bot_start_timeout_s
        done, _ = await asyncio.wait(
            {exited, joined}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        joined.cancel()
        if not done:
            log.error(f"Bot did not join its room within {timeout:.0f}s; stopping it")
            await session.bot.stop(self._settings.bot_stop_grace_s)
        elif joined in done:
            log.info(f"Bot joined after {time.monotonic() - session.started_monotonic:.2f}s")
        code = await exited
        uptime = time.monotonic() - session.started_monotonic
        if code == 0 or session.bot.stop_requested:
            log.info(f"Bot exited ({code}) after {uptime:.1f}s")
        else:
            log.warning(f"Bot exited with status {code} after {uptime:.1f}s")
        self._release(session)

    def _release(self, session: Session) -> None:
        if self._sessions.get(session.room) is session:
            del self._sessions[session.room]
