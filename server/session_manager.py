"""Which bot serves which room: at most one per room, a bounded number in all.

Every bot is supervised from spawn to reaping: a bot that exits or crashes frees its
slot at once, one that never joins its room is killed after `BOT_START_TIMEOUT_S`, and
shutdown leaves no child behind. `BOT_WARM_POOL` bots wait with the pipeline already
loaded (`--standby`), so a new conversation's bot joins without the import time.
"""

import asyncio
import shlex
import sys
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from loguru import logger

from bot.settings import Settings
from server.bot_environment import bot_environment
from server.bot_process import BotProcess
from server.server_metrics import Pool, ServerMetrics

CAPACITY_RETRY_AFTER_S = 10
# A standby bot that keeps dying is restarted ever more slowly, up to this.
STANDBY_RESTART_MAX_S = 60.0


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
    pool: Pool = "cold"

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

    def __init__(self, settings: Settings, metrics: ServerMetrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._argv = bot_argv(settings.bot_command)
        self._env = bot_environment(metrics.bot_settings(settings))
        self._sessions: dict[str, Session] = {}
        self._supervisors: set[asyncio.Task[None]] = set()
        self._standby: list[BotProcess] = []
        self._standby_restart_s = 1.0
        self._accepting = True
        metrics.watch(sessions=lambda: len(self._sessions), standby=lambda: len(self._standby))

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

    async def start(self) -> None:
        """Fill the warm pool."""
        for _ in range(self._settings.bot_warm_pool):
            await self._add_standby()

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
        standby = self._take_standby()
        session = Session(room=room, identity=identity, bot=standby or self._new_bot(room))
        # Claimed before the first await, so a concurrent call sees the room as taken.
        self._sessions[room] = session
        try:
            if standby is None:
                await session.bot.start()
            else:
                await self._hand_over(session, standby)
        except OSError as e:
            del self._sessions[room]
            logger.bind(room=room).error(f"Could not start the bot: {e.strerror or e}")
            self._metrics.session_failed("spawn_failed")
            raise BotStartFailed from None
        session.pool = "warm" if session.bot is standby else "cold"
        self._metrics.session_started(session.pool)
        logger.bind(
            room=room, session_id=session.session_id, pid=session.bot.pid, warm=standby is not None
        ).info("Bot started")
        self._spawn(self._supervise(session))
        return session

    def _new_bot(self, room: str) -> BotProcess:
        return BotProcess(self._argv + ["--room", room], self._env, room=room)

    def _take_standby(self) -> BotProcess | None:
        """A live standby bot, if any; a replacement starts warming at once."""
        while self._standby:
            bot = self._standby.pop(0)
            if bot.returncode is None:
                self._spawn(self._add_standby())
                return bot
        return None

    async def _hand_over(self, session: Session, standby: BotProcess) -> None:
        """Give the standby bot the room; if it died meanwhile, start a bot from scratch."""
        try:
            await standby.assign(session.room)
        except (BrokenPipeError, ConnectionResetError):
            logger.bind(room=session.room).warning("The standby bot was gone; starting one")
            session.bot = self._new_bot(session.room)
            await session.bot.start()

    async def _add_standby(self) -> None:
        if not self._accepting:
            return
        bot = BotProcess(self._argv + ["--standby"], self._env, standby=True)
        try:
            await bot.start()
        except OSError as e:
            logger.error(f"Could not start a standby bot: {e.strerror or e}")
            return
        if not self._accepting:
            # Shutdown began while it was starting: it would outlive the server.
            await bot.stop(self._settings.bot_stop_grace_s)
            return
        self._standby.append(bot)
        logger.bind(pid=bot.pid).info("Standby bot started")
        self._spawn(self._watch_standby(bot))

    async def _watch_standby(self, bot: BotProcess) -> None:
        """Replace a standby bot that dies before it gets a room, backing off."""
        started = asyncio.get_running_loop().time()
        code = await bot.wait()
        if bot not in self._standby:
            return  # It got a room; its session's supervisor owns it now.
        self._metrics.bot_reaped(bot.pid)
        self._standby.remove(bot)
        if not self._accepting:
            return
        if asyncio.get_running_loop().time() - started > STANDBY_RESTART_MAX_S:
            self._standby_restart_s = 1.0
        logger.warning(
            f"A standby bot exited with status {code}; "
            f"starting another in {self._standby_restart_s:.0f}s"
        )
        await asyncio.sleep(self._standby_restart_s)
        self._standby_restart_s = min(self._standby_restart_s * 2, STANDBY_RESTART_MAX_S)
        await self._add_standby()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._supervisors.add(task)
        task.add_done_callback(self._supervisors.discard)

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
        bots = [s.bot for s in self._sessions.values()] + self._standby
        await asyncio.gather(*(bot.stop(grace) for bot in bots))
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
            self._metrics.session_failed("join_timeout")
            await session.bot.stop(self._settings.bot_stop_grace_s)
        elif joined in done:
            elapsed = time.monotonic() - session.started_monotonic
            log.info(f"Bot joined after {elapsed:.2f}s")
            self._metrics.bot_joined(session.pool, elapsed)
        code = await exited
        self._metrics.bot_reaped(session.bot.pid)
        uptime = time.monotonic() - session.started_monotonic
        if code == 0 or session.bot.stop_requested:
            log.info(f"Bot exited ({code}) after {uptime:.1f}s")
        else:
            log.warning(f"Bot exited with status {code} after {uptime:.1f}s")
            joined_room = session.bot.joined.is_set()
            self._metrics.session_failed("crashed" if joined_room else "exited_before_joining")
        self._release(session)

    def _release(self, session: Session) -> None:
        if self._sessions.get(session.room) is session:
            del self._sessions[session.room]
