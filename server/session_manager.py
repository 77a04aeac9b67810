"""Which bot serves which room: at most one per room, a bounded number in all.

Every bot is supervised from launch to its end: a bot that exits, crashes or reports a
failure frees its slot at once, one that never reports being in its room is stopped
after `BOT_START_TIMEOUT_S`, and shutdown lets live conversations finish within
`DRAIN_TIMEOUT_S` before cutting the rest. How bots run is the backend's business
(`server/bot_backend.py`); what they report arrives in their `BotStatus`.
"""

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from loguru import logger

from bot.launch import Assignment
from bot.settings import Settings
from server.bot_backend import BotBackend, BotHandle
from server.cpu_busy import CpuBusy
from server.server_metrics import ServerMetrics

CAPACITY_RETRY_AFTER_S = 10


class RoomBusy(Exception):
    """Another identity already holds a conversation in this room."""


class AtCapacity(Exception):
    """Every bot slot is taken."""


class MachineBusy(Exception):
    """The machine's CPUs are too busy for another conversation (`MAX_CPU_BUSY`)."""


class ShuttingDown(Exception):
    """The server no longer takes sessions."""


class BotStartFailed(Exception):
    """The bot command could not be started."""


@dataclass
class Session:
    """One conversation: a room, the person in it, and the bot serving it."""

    room: str
    identity: str
    bot: BotHandle | None = None
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started_monotonic: float = field(default_factory=time.monotonic)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def state(self) -> Literal["starting", "running"]:
        """`running` once the bot has reported it is in its room."""
        return "running" if self.bot and self.bot.status.joined.is_set() else "starting"


class SessionManager:
    """Starts, tracks and stops the bots, one per room."""

    def __init__(
        self,
        settings: Settings,
        backend: BotBackend,
        metrics: ServerMetrics,
        cpu: CpuBusy | None = None,
    ) -> None:
        self._settings = settings
        self._cpu = cpu
        self._backend = backend
        self._metrics = metrics
        self._sessions: dict[str, Session] = {}
        self._supervisors: set[asyncio.Task[None]] = set()
        self._accepting = True
        metrics.watch(sessions=lambda: len(self._sessions), standby=lambda: backend.standby_count)

    @property
    def has_capacity(self) -> bool:
        """Whether a new session could start now."""
        return self._accepting and not self._full and not self.machine_busy

    @property
    def _full(self) -> bool:
        return len(self._sessions) >= self._settings.max_concurrent_sessions

    @property
    def cpu_busy(self) -> float | None:
        """The CPUs' busy share lately, when measured (`MAX_CPU_BUSY` set)."""
        return self._cpu.fraction if self._cpu else None

    @property
    def machine_busy(self) -> bool:
        """Whether the CPUs were busier than `MAX_CPU_BUSY` lately (never when it is 0)."""
        busy, limit = self.cpu_busy, self._settings.max_cpu_busy
        return limit > 0 and busy is not None and busy > limit

    def sessions(self) -> list[Session]:
        """Every live session, oldest first."""
        return sorted(self._sessions.values(), key=lambda s: s.started_monotonic)

    def get(self, room: str) -> Session | None:
        """The session in `room`, if any."""
        return self._sessions.get(room)

    async def start(self) -> None:
        """Let the backend get ready (warm its pool)."""
        await self._backend.start()

    async def open(
        self, room: str, identity: str, trace_context: dict[str, str] | None = None
    ) -> Session:
        """The room's session for `identity`, launching a bot when none serves the room.

        Args:
            room: The LiveKit room.
            identity: The person the conversation belongs to.
            trace_context: W3C trace-context carrier the bot's spans join.

        Raises:
            RoomBusy: the room's conversation belongs to another identity.
            AtCapacity: every slot is taken.
            MachineBusy: the CPUs are too busy for another conversation.
            ShuttingDown: the server is stopping.
            BotStartFailed: the bot could not be started.
        """
        if not self._accepting:
            raise ShuttingDown
        existing = self._sessions.get(room)
        if existing is not None:
            if existing.identity != identity:
                raise RoomBusy
            return existing
        if self._full:
            raise AtCapacity
        if self.machine_busy:
            raise MachineBusy
        session = Session(room=room, identity=identity)
        # Claimed before the first await, so a concurrent call sees the room as taken.
        self._sessions[room] = session
        try:
            session.bot = await self._backend.launch(Assignment(room, trace_context or {}))
        except OSError as e:
            self._release(session)
            logger.bind(room=room).error(f"Could not start the bot: {e.strerror or e}")
            self._metrics.session_failed("spawn_failed")
            raise BotStartFailed from None
        if not self._accepting:
            # Shutdown began while it was launching: it would outlive the server.
            await session.bot.stop(self._settings.bot_stop_grace_s)
            self._release(session)
            raise ShuttingDown
        self._metrics.session_started(session.bot.pool)
        logger.bind(
            room=room, session_id=session.session_id, pid=session.bot.pid, pool=session.bot.pool
        ).info("Bot started")
        task = asyncio.create_task(self._supervise(session, session.bot))
        self._supervisors.add(task)
        task.add_done_callback(self._supervisors.discard)
        return session

    async def end(self, room: str) -> bool:
        """Stop the room's bot and free its slot; False when the room has no session."""
        session = self._sessions.get(room)
        if session is None or session.bot is None:
            return False
        await session.bot.stop(self._settings.bot_stop_grace_s)
        self._release(session)
        return True

    async def shutdown(self, drain_timeout_s: float = 0) -> None:
        """Refuse new sessions, let live ones end within `drain_timeout_s`, stop the rest.

        The warm pool stops at once. Safe to call again (a second signal, then the app's
        own shutdown): later calls stop whatever is still running.
        """
        self._accepting = False
        await self._backend.close()
        live = [s for s in self._sessions.values() if s.bot is not None]
        if live and drain_timeout_s > 0:
            logger.info(
                f"Draining: waiting up to {drain_timeout_s:.0f}s for "
                f"{len(live)} live conversation(s) to end"
            )
            await asyncio.wait(
                [asyncio.create_task(s.ended.wait()) for s in live], timeout=drain_timeout_s
            )
        cut = [s for s in live if not s.ended.is_set()]
        if live:
            logger.log(
                "WARNING" if cut else "INFO",
                f"Shutdown: {len(live) - len(cut)} conversation(s) ended on their own, "
                f"{len(cut)} cut",
            )
        grace = self._settings.bot_stop_grace_s
        await asyncio.gather(*(s.bot.stop(grace) for s in cut if s.bot is not None))
        await asyncio.gather(*self._supervisors, return_exceptions=True)
        await self._backend.close()  # again, now that no bot needs what it keeps

    async def _supervise(self, session: Session, bot: BotHandle) -> None:
        """Watch one bot from launch to exit, then free its slot."""
        log = logger.bind(room=session.room, session_id=session.session_id)
        exited = asyncio.create_task(bot.wait())
        joined = asyncio.create_task(bot.status.joined.wait())
        failed = asyncio.create_task(bot.status.failed.wait())
        timeout = self._settings.bot_start_timeout_s
        done, _ = await asyncio.wait(
            {exited, joined, failed}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        joined.cancel()
        if not done:
            log.error(f"Bot did not join its room within {timeout:.0f}s; stopping it")
            self._metrics.session_failed("join_timeout")
            await bot.stop(self._settings.bot_stop_grace_s)
        elif failed in done:
            # It exits by itself after reporting; stopping frees the slot even if it hangs.
            log.error(f"Bot failed to start: {bot.status.failure}")
            self._metrics.session_failed("reported_failure")
            await bot.stop(self._settings.bot_stop_grace_s)
        elif joined in done:
            elapsed = time.monotonic() - session.started_monotonic
            log.info(f"Bot joined after {elapsed:.2f}s")
            self._metrics.bot_joined(bot.pool, elapsed)
        code = await exited
        failed.cancel()
        self._metrics.bot_reaped(bot.pid)
        uptime = time.monotonic() - session.started_monotonic
        why = f": {bot.status.end_reason}" if bot.status.end_reason else ""
        if bot.status.failure and failed not in done:
            log.error(f"Bot failed: {bot.status.failure}")
        if code == 0 or bot.stop_requested:
            log.info(f"Bot exited ({code}) after {uptime:.1f}s{why}")
        else:
            log.warning(f"Bot exited with status {code} after {uptime:.1f}s{why}")
            joined_room = bot.status.joined.is_set()
            self._metrics.session_failed("crashed" if joined_room else "exited_before_joining")
        self._release(session)

    def _release(self, session: Session) -> None:
        if self._sessions.get(session.room) is session:
            del self._sessions[session.room]
        session.ended.set()
