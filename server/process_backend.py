"""Bots as child processes of this server, with a warm pool of standby bots.

Every bot starts the same way (`bot/launch.py`): loaded and waiting for its assignment
line. A cold start writes that line at once; a warm one hands it to a bot that has
already imported the pipeline, so a new conversation's bot joins without the import
time. A standby bot that dies is replaced, with backoff.

With BOT_FORK_SERVER (the default), bots are not spawned but forked from a fork server
that imported everything once (`server/fork_server.py`): a start costs a fork instead
of 1-2 s of imports, and the imported code and objects are shared between all bots.
A fork server that dies is started again on the next launch; one that cannot start
(a BOT_COMMAND without `--fork-server`) leaves bots spawned, retried with backoff.
"""

import asyncio
from collections.abc import Coroutine
from typing import Any

from loguru import logger

from bot.launch import Assignment, bot_environment
from bot.settings import Settings
from server.bot_process import BotProcess
from server.fork_server import ForkServer, ForkServerError
from server.server_metrics import ServerMetrics

# A standby bot or a fork server that keeps dying is restarted ever more slowly, up to this.
STANDBY_RESTART_MAX_S = 60.0
# A standby handed a room is replaced once it is in the room, or after this long.
REFILL_WAIT_MAX_S = 2.0


class ProcessBackend:
    """Spawns, warms and hands out bot processes (see `server/bot_backend.py`)."""

    def __init__(self, settings: Settings, metrics: ServerMetrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._env = bot_environment(metrics.bot_settings(settings))
        self._standby: list[BotProcess] = []
        self._standby_restart_s = 1.0
        self._closed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._watchers: dict[BotProcess, asyncio.Task[None]] = {}
        self._fork_server: ForkServer | None = None
        self._fork_server_starting: asyncio.Task[None] | None = None
        self._fork_server_retry_at = 0.0
        self._fork_server_backoff_s = 1.0

    @property
    def standby_count(self) -> int:
        """Standby bots waiting for a room."""
        return len(self._standby)

    async def start(self) -> None:
        """Start the fork server (the first launch waits for it), fill the warm pool."""
        if self._settings.bot_fork_server:
            self._fork_server_starting = self._spawn(self._start_fork_server())
        for _ in range(self._settings.bot_warm_pool):
            await self._add_standby()

    async def launch(self, assignment: Assignment) -> BotProcess:
        """A bot for `assignment`, from the warm pool when one is ready.

        Raises:
            OSError: the bot command could not be started.
        """
        log = logger.bind(room=assignment.room)
        standby = self._take_standby()
        if standby is not None:
            try:
                await standby.assign(assignment)
                standby.pool = "warm"
                return standby
            except (BrokenPipeError, ConnectionResetError):
                log.warning("The standby bot was gone; starting one")
        bot = await self._start_bot(room=assignment.room)
        try:
            await bot.assign(assignment)
        except (BrokenPipeError, ConnectionResetError):
            pass  # It exited at once; its supervisor sees the exit and frees the slot.
        return bot

    async def close(self) -> None:
        """Stop refilling the pool and stop the standby bots; idempotent.

        The fork server stays while bots it forked run (it alone learns their exit
        status); the session manager calls this again once they have all exited.
        """
        self._closed.set()
        standby, self._standby = self._standby, []
        await asyncio.gather(*(bot.stop(self._settings.bot_stop_grace_s) for bot in standby))
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._fork_server is not None and not self._fork_server.live_children:
            await self._fork_server.close()

    async def _start_bot(self, **log_context: str) -> BotProcess:
        """A started bot, forked when a fork server is ready, else spawned.

        Raises:
            OSError: the bot command could not be started.
        """
        bot = BotProcess(self._settings.bot_command, self._env, **log_context)
        # A second try, when the first found the fork server dead, goes to its successor.
        for _ in range(2):
            fork_server = await self._ready_fork_server()
            if fork_server is None:
                break
            try:
                await bot.start(fork_server)
                return bot
            except ForkServerError as e:
                if fork_server.running:
                    logger.warning(f"Spawning a bot instead: {e}")
                    break
        await bot.start()
        return bot

    async def _ready_fork_server(self) -> ForkServer | None:
        """The running fork server, (re)starting it when due; None to spawn instead."""
        if not self._settings.bot_fork_server or self._closed.is_set():
            return None
        server = self._fork_server
        starting = self._fork_server_starting
        if (server is None or not server.running) and (starting is None or starting.done()):
            if asyncio.get_running_loop().time() < self._fork_server_retry_at:
                return None
            starting = self._fork_server_starting = self._spawn(self._start_fork_server())
        if starting is not None and not starting.done():
            await asyncio.shield(starting)
        server = self._fork_server
        return server if server is not None and server.running else None

    async def _start_fork_server(self) -> None:
        if self._fork_server is not None:
            await self._fork_server.close()
        server = self._fork_server = ForkServer(self._settings.bot_command, self._env)
        try:
            took = await server.start(self._settings.bot_start_timeout_s)
        except (OSError, ForkServerError) as e:
            backoff = self._fork_server_backoff_s
            logger.warning(f"Bots will be spawned: the fork server did not start ({e})")
            self._fork_server_retry_at = asyncio.get_running_loop().time() + backoff
            self._fork_server_backoff_s = min(backoff * 2, STANDBY_RESTART_MAX_S)
            return
        self._fork_server_backoff_s = 1.0
        logger.bind(pid=server.pid).info(f"Fork server ready after {took:.2f}s")

    def _take_standby(self) -> BotProcess | None:
        """A live standby bot, if any; a replacement warms once it is in its room."""
        while self._standby:
            bot = self._standby.pop(0)
            # Its session watches it from now on.
            self._watchers.pop(bot).cancel()
            if bot.returncode is None:
                self._spawn(self._refill_after_joining(bot))
                return bot
        return None

    async def _refill_after_joining(self, bot: BotProcess) -> None:
        """Start a replacement standby once `bot` is in its room (or failed, or soon).

        Warming one (a fork, onnxruntime, Silero: ~0.1 s of CPU) while the taken bot
        connects would slow the very start the pool is there to speed up.
        """
        joining = asyncio.ensure_future(bot.status.joined_within(REFILL_WAIT_MAX_S))
        closing = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait({joining, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            joining.cancel()
            closing.cancel()
        await self._add_standby()

    async def _add_standby(self) -> None:
        if self._closed.is_set():
            return
        try:
            bot = await self._start_bot()
        except OSError as e:
            logger.error(f"Could not start a standby bot: {e.strerror or e}")
            return
        if self._closed.is_set():
            # Closing began while it was starting: it would outlive the pool.
            await bot.stop(self._settings.bot_stop_grace_s)
            return
        self._standby.append(bot)
        logger.bind(pid=bot.pid).info("Standby bot started")
        self._watchers[bot] = self._spawn(self._watch_standby(bot))

    async def _watch_standby(self, bot: BotProcess) -> None:
        """Replace a standby bot that dies before it gets a room, backing off."""
        started = asyncio.get_running_loop().time()
        code = await bot.wait()
        del self._watchers[bot]
        self._metrics.bot_reaped(bot.pid)
        if bot not in self._standby:
            return  # The pool closed.
        self._standby.remove(bot)
        if self._closed.is_set():
            return
        if asyncio.get_running_loop().time() - started > STANDBY_RESTART_MAX_S:
            self._standby_restart_s = 1.0
        logger.warning(
            f"A standby bot exited with status {code}; "
            f"starting another in {self._standby_restart_s:.0f}s"
        )
        try:
            await asyncio.wait_for(self._closed.wait(), self._standby_restart_s)
            return
        except TimeoutError:
            pass
        self._standby_restart_s = min(self._standby_restart_s * 2, STANDBY_RESTART_MAX_S)
        await self._add_standby()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
