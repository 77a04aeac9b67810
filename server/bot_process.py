"""One bot child process: started in its own process group, its logs relayed, reaped."""

import asyncio
import json
import os
import signal
from asyncio.subprocess import DEVNULL, PIPE, Process

from loguru import logger

from bot.logging import BOT_JOINED_EVENT

_MAX_LINE_BYTES = 1 << 20
_RECORD_FIELDS = {"ts", "level", "logger", "function", "message"}
_LEVELS = {"TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"}
# After the bot exits, how long its pipes may stay open (a stray grandchild) before
# the relay gives up on them.
_DRAIN_TIMEOUT_S = 1.0


class BotProcess:
    """A `python -m bot --room ROOM` child and what the server knows of it.

    The child runs in a new session (its own process group), so a terminal's Ctrl-C
    reaches the server only and the server decides how its bots stop; signals go to the
    whole group, so nothing the bot started outlives it.
    """

    def __init__(
        self, argv: list[str], env: dict[str, str], *, standby: bool = False, **log_context: str
    ) -> None:
        self._argv = argv
        self._env = env
        self._standby = standby
        self._log = logger.bind(source="bot", **log_context)
        self._process: Process | None = None
        self._relays: list[asyncio.Task[None]] = []
        self.joined = asyncio.Event()
        self.stop_requested = False

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
        self._process = await asyncio.create_subprocess_exec(
            *self._argv,
            stdin=PIPE if self._standby else DEVNULL,
            stdout=PIPE,
            stderr=PIPE,
            env=self._env,
            start_new_session=True,
            limit=_MAX_LINE_BYTES,
        )
        assert self._process.stdout and self._process.stderr
        self._relays = [
            asyncio.create_task(self._relay(self._process.stdout, "INFO")),
            asyncio.create_task(self._relay(self._process.stderr, "WARNING")),
        ]

    async def assign(self, room: str) -> None:
        """Hand a standing-by bot its room (`python -m bot --standby` reads it from stdin)."""
        assert self._process and self._process.stdin
        self._log = self._log.bind(room=room)
        self._process.stdin.write(f"{room}\n".encode())
        await self._process.stdin.drain()
        self._process.stdin.close()

    async def wait(self) -> int:
        """Wait until the child exits and is reaped, and its last log lines are relayed."""
        assert self._process
        code = await self._process.wait()
        _, stuck = await asyncio.wait(self._relays, timeout=_DRAIN_TIMEOUT_S)
        for relay in stuck:
            relay.cancel()
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
        if record.get("event") == BOT_JOINED_EVENT:
            self.joined.set()
        level = str(record.get("level", "INFO")).upper()
        extras = {k: v for k, v in record.items() if k not in _RECORD_FIELDS}
        extras.pop("room", None)
        self._log.bind(**extras).log(
            level if level in _LEVELS else "INFO", str(record.get("message", ""))
        )
