"""One bot process: spawned as `bot/launch.py` defines or forked, its pipes read, reaped."""

import asyncio
import os
import signal
from asyncio.subprocess import PIPE, Process

from bot.control import ControlMessage
from bot.launch import Assignment, supervised_argv
from server.bot_backend import Pool
from server.bot_status import BotStatus
from server.fork_server import ForkServer
from server.forked_process import ForkedProcess, fork_bot
from server.log_relay import MAX_LINE_BYTES, LogRelay

# After the bot exits, how long its pipes may stay open (a stray grandchild) before
# the readers give up on them.
_PIPES_CLOSE_TIMEOUT_S = 1.0


class BotProcess:
    """A supervised `BOT_COMMAND --standby --control-fd N` process and what it reported.

    It is this server's child, or a fork of the fork server (`server/fork_server.py`)
    that continues as that same command line would, with the same pipes and session.

    The bot reports on its own pipe (`status`); its log lines are only relayed, tagged
    with the room, through this server's redacting sink. The child runs in a new
    session (its own process group), so a terminal's Ctrl-C reaches the server only and
    the server decides how its bots stop; signals go to the whole group, so nothing the
    bot started outlives it.
    """

    def __init__(self, command: str, env: dict[str, str], **log_context: str) -> None:
        self._command = command
        self._env = env
        self._relay = LogRelay(source="bot", **log_context)
        self._process: Process | ForkedProcess | None = None
        self._readers: list[asyncio.Task[None]] = []
        self.status = BotStatus()
        self.stop_requested = False
        self.pool: Pool = "cold"
        self.worker_id: str | None = None

    @property
    def pid(self) -> int | None:
        """The child's pid (also its process group id), once started."""
        return self._process.pid if self._process else None

    @property
    def returncode(self) -> int | None:
        """The exit status once the child has been reaped; negative for a signal."""
        return self._process.returncode if self._process else None

    async def start(self, fork_server: ForkServer | None = None) -> None:
        """Spawn the child, or fork it from `fork_server`.

        Raises:
            OSError: the command cannot be started.
            ForkServerError: the fork server could not fork it.
        """
        control_read, control_write = os.pipe()
        try:
            if fork_server is not None:
                self._process = await fork_bot(fork_server, control_write, MAX_LINE_BYTES)
            else:
                self._process = await asyncio.create_subprocess_exec(
                    *supervised_argv(self._command, control_write),
                    stdin=PIPE,
                    stdout=PIPE,
                    stderr=PIPE,
                    pass_fds=(control_write,),
                    env=self._env,
                    start_new_session=True,
                    limit=MAX_LINE_BYTES,
                )
        except BaseException:
            os.close(control_read)
            raise
        finally:
            os.close(control_write)
        assert self._process.stdout and self._process.stderr
        self._readers = [
            asyncio.create_task(self._relay.relay(self._process.stdout, "INFO")),
            asyncio.create_task(self._relay.relay(self._process.stderr, "WARNING")),
            asyncio.create_task(self._read_control(control_read)),
        ]

    async def assign(self, assignment: Assignment) -> None:
        """Hand the bot its room: one JSON line on standard input, which then closes.

        Raises:
            BrokenPipeError, ConnectionResetError: the bot has already exited.
        """
        assert self._process and self._process.stdin
        self._relay.log = self._relay.log.bind(room=assignment.room)
        self._process.stdin.write(assignment.to_line())
        try:
            await self._process.stdin.drain()
        finally:
            self._process.stdin.close()

    async def wait(self) -> int:
        """Wait until the child exits and is reaped, and its pipes are read to the end."""
        assert self._process
        code = await self._process.wait()
        _, stuck = await asyncio.wait(self._readers, timeout=_PIPES_CLOSE_TIMEOUT_S)
        for reader in stuck:
            reader.cancel()
        return code

    async def stop(self, grace_s: float) -> int:
        """SIGTERM the group, then SIGKILL it if the bot has not exited within `grace_s`."""
        assert self._process
        self.stop_requested = True
        self._signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(asyncio.shield(self._process.wait()), grace_s)
        except TimeoutError:
            log = self._relay.log
            log.warning(f"Bot did not stop within {grace_s:.1f}s of SIGTERM; killing it")
            self._signal(signal.SIGKILL)
            return await self._process.wait()

    def _signal(self, sig: signal.Signals) -> None:
        # Only while its exit is unknown: after that the pid may belong to someone else.
        if self._process and self._process.returncode is None:
            try:
                os.killpg(self._process.pid, sig)
            except ProcessLookupError:
                pass

    async def _read_control(self, fd: int) -> None:
        """Apply each control message the bot writes until it closes its end."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=MAX_LINE_BYTES, loop=loop)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader, loop=loop), os.fdopen(fd, "rb", 0)
        )
        try:
            while line := await reader.readline():
                try:
                    message = ControlMessage.from_line(line)
                except ValueError:
                    self._relay.log.warning("Ignored a malformed control message from the bot")
                    continue
                self.status.apply(message)
        except ValueError:
            log = self._relay.log
            log.warning(f"The bot's control channel sent a line over {MAX_LINE_BYTES} bytes")
        finally:
            transport.close()
