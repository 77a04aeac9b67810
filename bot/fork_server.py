"""The bot's fork server (zygote): import everything once, then fork one bot per room.

Started as `BOT_COMMAND --fork-server FD` (`bot/launch.py`) with exactly a bot's
environment, it runs `preload`, freezes the imported objects out of the garbage
collector (so their pages stay shared copy-on-write with every fork) and then serves
its supervisor over the SOCK_SEQPACKET socket FD, one JSON message each way:

- supervisor → here: `fork`, carrying the child's stdin, stdout, stderr and control
  pipe ends (SCM_RIGHTS);
- here → supervisor: `{"ready": true, "threads": n}` once loaded, `{"forked": pid,
  "threads": n}` or `{"refused": "why"}` per request, and `{"exited": pid, "status": s}`
  when a child it forked has exited (the supervisor is not the parent, so this is the
  only place the exit status exists).

It never forks while a second thread exists: a fork copies only the calling thread,
and a lock another thread held would stay locked forever in the child. Each child
starts a new session, takes the pipes as fds 0-2 plus its control fd, and returns
from `serve` into `run` as if it were `BOT_COMMAND --standby --control-fd N`.
The server closing its end stops the fork server; children it forked run on. Forks keep
its command line (`BOT_COMMAND --fork-server FD`); its command name, `NAME`, is its own.
"""

import gc
import json
import os
import select
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.launch import forked_argv

# stdin, stdout, stderr and the control pipe, in that order.
CHILD_FDS = 4
# The fork server's command name (`ps -o comm`, /proc/PID/comm): its forks keep its
# command line, so this is what tells it from the bots; they get back Python's name.
NAME = "bot-fork-server"
FORK_REQUEST = b"fork"
_MAX_MESSAGE_BYTES = 4096


def thread_count() -> int:
    """Threads of this process as the kernel sees them, native ones included."""
    return max(len(os.listdir("/proc/self/task")), threading.active_count())


def serve(sock_fd: int, preload: Callable[[], None], run: Callable[[], int]) -> int:
    """Preload, then fork on request; returns `run()`'s code in a child, 0 in the server."""
    sock = socket.socket(fileno=sock_fd)
    preload()
    gc.collect()
    gc.freeze()
    bot_name = _rename(NAME)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    _send(sock, {"ready": True, "threads": thread_count()})
    while True:
        readable, _, _ = select.select([sock.fileno(), wake_r], [], [])
        if wake_r in readable:
            _drain(wake_r)
        _report_exits(sock)
        if sock.fileno() not in readable:
            continue
        request, fds, _, _ = socket.recv_fds(sock, _MAX_MESSAGE_BYTES, CHILD_FDS)
        if not request:
            return 0  # the supervisor is gone
        threads = thread_count()
        if request != FORK_REQUEST or len(fds) != CHILD_FDS or threads != 1:
            why = f"{threads} threads" if threads != 1 else "not a fork request with 4 fds"
            _send(sock, {"refused": why})
        else:
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                signal.set_wakeup_fd(-1)
                for fd in (wake_r, wake_w):
                    os.close(fd)
                sock.close()
                _rename(bot_name)
                _become_bot(fds)
                return run()
            _send(sock, {"forked": pid, "threads": threads})
        for fd in fds:
            os.close(fd)


def _become_bot(fds: list[int]) -> None:
    """In the child: a new session, the pipes as stdio, argv as a spawned standby's."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setsid()
    stdin, stdout, stderr, control = fds
    for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
        os.dup2(fd, target)
        os.close(fd)
    os.set_inheritable(control, True)
    sys.argv = [sys.argv[0], *forked_argv(sys.argv[1:], control)]


def _rename(name: str) -> str:
    """Set this process's command name; returns the previous one."""
    comm = Path("/proc/self/comm")
    previous = comm.read_text().strip()
    comm.write_text(name)
    return previous


def _drain(fd: int) -> None:
    """Empty the signal wake-up pipe (non-blocking)."""
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def _report_exits(sock: socket.socket) -> None:
    """Reap every exited child and tell the supervisor its status."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(sock, {"exited": pid, "status": os.waitstatus_to_exitcode(status)})


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    try:
        sock.send(json.dumps(message).encode())
    except OSError:
        pass  # the supervisor is gone; the next receive says so
