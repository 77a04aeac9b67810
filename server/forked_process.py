"""A bot forked by the fork server, with the interface of an asyncio subprocess."""

import asyncio
import os

from server.fork_server import ForkServer


class ForkedProcess:
    """What `BotProcess` uses of `asyncio.subprocess.Process`, for a bot it did not spawn.

    Its stdio are pipes this server made and handed to the fork server; its exit status
    comes from the fork server (`server/fork_server.py`).
    """

    def __init__(
        self,
        pid: int,
        exit: "asyncio.Future[int]",
        stdin: asyncio.StreamWriter,
        stdout: asyncio.StreamReader,
        stderr: asyncio.StreamReader,
    ) -> None:
        self.pid = pid
        self._exit = exit
        self.stdin: asyncio.StreamWriter | None = stdin
        self.stdout: asyncio.StreamReader | None = stdout
        self.stderr: asyncio.StreamReader | None = stderr

    @property
    def returncode(self) -> int | None:
        """Its exit status once reported; negative for a signal."""
        return self._exit.result() if self._exit.done() else None

    async def wait(self) -> int:
        """Wait until its exit is reported."""
        return await asyncio.shield(self._exit)


async def fork_bot(server: ForkServer, control_fd: int, limit: int) -> ForkedProcess:
    """Fork a bot whose control pipe is `control_fd`, its stdio piped to this server.

    Raises:
        ForkServerError: the fork server could not fork it.
    """
    stdin_r, stdin_w = os.pipe()
    stdout_r, stdout_w = os.pipe()
    stderr_r, stderr_w = os.pipe()
    try:
        pid, exit = await server.fork([stdin_r, stdout_w, stderr_w, control_fd])
    except BaseException:
        for fd in (stdin_w, stdout_r, stderr_r):
            os.close(fd)
        raise
    finally:
        for fd in (stdin_r, stdout_w, stderr_w):
            os.close(fd)
    loop = asyncio.get_running_loop()
    readers = [await _read_pipe(fd, limit) for fd in (stdout_r, stderr_r)]
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(stdin_w, "wb", 0)
    )
    stdin = asyncio.StreamWriter(transport, protocol, None, loop)
    return ForkedProcess(pid, exit, stdin, readers[0], readers[1])


async def _read_pipe(fd: int, limit: int) -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    await loop.connect_read_pipe(lambda: protocol, os.fdopen(fd, "rb", 0))
    return reader
