"""The server's end of a bot fork server (`bot/fork_server.py`): start it, fork, learn exits.

The fork server, not this server, is each forked bot's parent, so a bot's exit status
reaches us as a message on the fork server's socket. If the fork server dies, the bots
it forked run on (their conversations are not its business); each is then watched
through a pidfd, and its exit status, which nobody can tell us any more, is reported
as `EXIT_STATUS_UNKNOWN`.
"""

import asyncio
import json
import os
import signal
import socket
import time
from asyncio.subprocess import DEVNULL, PIPE, Process
from collections import deque
from typing import Any

from bot.fork_server import CHILD_FDS, FORK_REQUEST
from bot.launch import fork_server_argv
from server.log_relay import MAX_LINE_BYTES, LogRelay

# What a bot's exit status is taken to be when its fork server died before telling.
EXIT_STATUS_UNKNOWN = 255
_MAX_MESSAGE_BYTES = 4096
_STOP_GRACE_S = 2.0


class ForkServerError(Exception):
    """The fork server is not running, did not start, or refused to fork."""


class ForkServer:
    """One run of `BOT_COMMAND --fork-server FD`, in its own session, logs relayed."""

    def __init__(self, command: str, env: dict[str, str]) -> None:
        self._command = command
        self._env = env
        self._relay = LogRelay(source="fork_server")
        self._process: Process | None = None
        self._sock: socket.socket | None = None
        self._replies: deque[asyncio.Future[dict[str, Any]]] = deque()
        self._exits: dict[int, asyncio.Future[int]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.running = False
        self._closing = False

    @property
    def pid(self) -> int | None:
        """The fork server's pid, once started."""
        return self._process.pid if self._process else None

    @property
    def live_children(self) -> int:
        """Bots it forked whose exit has not been reported yet."""
        return sum(not exit.done() for exit in self._exits.values())

    async def start(self, timeout_s: float) -> float:
        """Start it and wait until it has imported everything; returns the seconds taken.

        Raises:
            OSError: the command could not be started.
            ForkServerError: it exited or did not get ready within `timeout_s`.
        """
        started = time.monotonic()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._process = await asyncio.create_subprocess_exec(
                *fork_server_argv(self._command, theirs.fileno()),
                stdin=DEVNULL,
                stdout=PIPE,
                stderr=PIPE,
                pass_fds=(theirs.fileno(),),
                env=self._env,
                start_new_session=True,
                limit=MAX_LINE_BYTES,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        assert self._process.stdout and self._process.stderr
        ours.setblocking(False)
        self._sock = ours
        self._tasks = [
            asyncio.create_task(self._relay.relay(self._process.stdout, "INFO")),
            asyncio.create_task(self._relay.relay(self._process.stderr, "WARNING")),
        ]
        try:
            ready = await asyncio.wait_for(self._receive(), timeout_s)
        except TimeoutError:
            await self.close()
            raise ForkServerError(f"it was not ready within {timeout_s:.0f}s") from None
        if ready is None or ready.get("threads") != 1:
            await self.close()
            raise ForkServerError(
                f"it exited with status {self._process.returncode}"
                if ready is None
                else f"it had {ready.get('threads')} threads when ready"
            )
        self.running = True
        self._tasks.append(asyncio.create_task(self._read()))
        return time.monotonic() - started

    async def fork(self, fds: list[int]) -> tuple[int, "asyncio.Future[int]"]:
        """Fork a bot with `fds` as its stdin, stdout, stderr and control pipe.

        Returns its pid and a future of its exit status.

        Raises:
            ForkServerError: not running, or it refused.
        """
        if not self.running or self._sock is None or len(fds) != CHILD_FDS:
            raise ForkServerError("the fork server is not running")
        reply = asyncio.get_running_loop().create_future()
        self._replies.append(reply)
        try:
            socket.send_fds(self._sock, [FORK_REQUEST], fds)
        except OSError as e:
            self.running = False  # its end is closed: it is exiting
            self._replies.remove(reply)
            raise ForkServerError(f"the fork server did not take the request: {e}") from None
        message = await reply
        if "forked" not in message:
            raise ForkServerError(f"the fork server refused: {message.get('refused')}")
        pid = int(message["forked"])
        return pid, self._exits[pid]

    async def close(self) -> None:
        """Close its socket (it exits on that), killing it if it lingers; idempotent."""
        self.running = False
        self._closing = True
        if self._sock is None or self._process is None:
            return
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already shut
        try:
            await asyncio.wait_for(asyncio.shield(self._process.wait()), _STOP_GRACE_S)
        except TimeoutError:
            if self._process.returncode is None:
                os.killpg(self._process.pid, signal.SIGKILL)
            await self._process.wait()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._sock.close()

    async def _receive(self) -> dict[str, Any] | None:
        """The next message from the fork server; None once it has gone."""
        assert self._sock is not None
        try:
            data = await asyncio.get_running_loop().sock_recv(self._sock, _MAX_MESSAGE_BYTES)
        except OSError:
            return None
        if not data:
            return None
        message = json.loads(data)
        return message if isinstance(message, dict) else {}

    async def _read(self) -> None:
        """Route replies to `fork` and exit reports, until the fork server goes."""
        while (message := await self._receive()) is not None:
            if "exited" in message:
                exit = self._exits.setdefault(
                    int(message["exited"]), asyncio.get_running_loop().create_future()
                )
                if not exit.done():
                    exit.set_result(int(message["status"]))
            elif self._replies:
                if "forked" in message:
                    self._exits.setdefault(
                        int(message["forked"]), asyncio.get_running_loop().create_future()
                    )
                self._replies.popleft().set_result(message)
        self.running = False
        code = await self._process.wait() if self._process else None
        orphans = [pid for pid, exit in self._exits.items() if not exit.done()]
        self._relay.log.bind(pid=self.pid).log(
            "INFO" if self._closing else "WARNING",
            f"Fork server exited ({code}); {len(orphans)} bot(s) it forked run on",
        )
        while self._replies:
            self._replies.popleft().set_exception(ForkServerError("the fork server exited"))
        for pid in orphans:
            self._watch_orphan(pid, self._exits[pid])

    def _watch_orphan(self, pid: int, exit: "asyncio.Future[int]") -> None:
        """Resolve `exit` when a bot whose fork server died exits."""
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            exit.set_result(EXIT_STATUS_UNKNOWN)
            return
        loop = asyncio.get_running_loop()

        def exited() -> None:
            loop.remove_reader(pidfd)
            os.close(pidfd)
            if not exit.done():
                exit.set_result(EXIT_STATUS_UNKNOWN)

        loop.add_reader(pidfd, exited)
