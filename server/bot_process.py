"""One bot child process: spawned as `bot/launch.py` defines, its pipes read, reaped."""

import asyncio
import json
import os
import signal
from asyncio.subprocess import PIPE, Process

from loguru import logger

from bot.control import ControlMessage
from bot.launch import Assignment, supervised_argv
from server.bot_backend import Pool
from server.bot_status import BotStatus

_MAX_LINE_BYTES = 1 << 20
_RECORD_FIELDS = {"ts", "level", "logger", "function", "message"}
_LEVELS = {"TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"}
# After the bot exits, how long its pipes may stay open (a stray grandchild) before
# the readers give up on them.
_PIPES_CLOSE_TIMEOUT_S = 1.0


class BotProcess:
    """A supervised `BOT_COMMAND --standby --control-fd N` child and what it reported.

    The bot reports on its own pipe (`status`); its log lines are only relayed, tagged
    with the room, through this server's redacting sink. The child runs in a new
    session (its own process group), so a terminal's Ctrl-C reaches the server only and
    the server decides how its bots stop; signals go to the whole group, so nothing the
    bot started outlives it.
    """

    def __init__(self, command: str, env: dict[str, str], **log_context: str) -> None:
        self._command = command
        self._env = env
        self._log = logger.bind(source="bot", **log_context)
        self._process: Process | None = None
        self._readers: list[asyncio.Task[None]] = []
        self.status = BotStatus()
        self.stop_requested = False
        self.pool: Pool = "cold"

    @property
    def pid(self) -> int | None:
        """The child's pid (also its process group id), once started."""
        return self._process.pid if self._process else None

    @property
    def returncode(self) -> int | None:
        """The exit status once the child has been reaped; negative for a signal."""
        return self._process.returncode if self._process else None

    async def start(self) -> None:
        """Spawn the child; raises OSError when the command cannot be started."""
        control_read, control_write = os.pipe()
        try:
            self._process = await asyncio.create_subprocess_exec(
                *supervised_argv(self._command, control_write),
                stdin=PIPE,
                stdout=PIPE,
                stderr=PIPE,
                pass_fds=(control_write,),
                env=self._env,
                start_new_session=True,
                limit=_MAX_LINE_BYTES,
            )
        except BaseException:
            os.close(control_read)
            raise
        finally:
            os.close(control_write)
        assert self._process.stdout and self._process.stderr
        self._readers = [
            asyncio.create_task(self._relay(self._process.stdout, "INFO")),
            asyncio.create_task(self._relay(self._process.stderr, "WARNING")),
            asyncio.create_task(self._read_control(control_read)),
        ]

    async def assign(self, assignment: Assignment) -> None:
        """Hand the bot its room: one JSON line on standard input, which then closes.

        Raises:
            BrokenPipeError, ConnectionResetError: the bot has already exited.
        """
        assert self._process and self._process.stdin
        self._log = self._log.bind(room=assignment.room)
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
            self._log.warning(f"Bot did not stop within {grace_s:.1f}s of SIGTERM; killing it")
            self._signal(signal.SIGKILL)
            return await self._process.wait()

    def _signal(self, sig: signal.Signals) -> None:
        # Only while unreaped: after that the pid may belong to someone else.
        if self._process and self._process.returncode is None:
            try:
                os.killpg(self._process.pid, sig)
            except ProcessLookupError:
                pass

    async def _read_control(self, fd: int) -> None:
        """Apply each control message the bot writes until it closes its end."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=_MAX_LINE_BYTES, loop=loop)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader, loop=loop), os.fdopen(fd, "rb", 0)
        )
        try:
            while line := await reader.readline():
                try:
                    message = ControlMessage.from_line(line)
                except ValueError:
                    self._log.warning("Ignored a malformed control message from the bot")
                    continue
                self.status.apply(message)
        except ValueError:
            self._log.warning(f"The bot's control channel sent a line over {_MAX_LINE_BYTES} bytes")
        finally:
            transport.close()

    async def _relay(self, stream: asyncio.StreamReader, plain_level: str) -> None:
        """Re-log each line the bot writes, tagged with the session, through our sink."""
        while True:
            try:
                line = await stream.readline()
            except ValueError:
                self._log.warning(f"Dropped a bot log line over {_MAX_LINE_BYTES} bytes")
                continue
            if not line:
                return
            self._relay_line(line.decode(errors="replace").rstrip(), plain_level)

    def _relay_line(self, text: str, plain_level: str) -> None:
        if not text:
            return
        try:
            record = json.loads(text)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            # Not one of the bot's JSON records: an interpreter error or a library's print.
            self._log.log(plain_level, text)
            return
        level = str(record.get("level", "INFO")).upper()
        extras = {k: v for k, v in record.items() if k not in _RECORD_FIELDS}
        extras.pop("room", None)
        self._log.bind(**extras).log(
            level if level in _LEVELS else "INFO", str(record.get("message", ""))
        )
