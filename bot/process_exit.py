"""Ending a process that has loaded livekit-rtc with the status it chose.

livekit-rtc's native threads hand events to Python through a callback. One that calls
in while the interpreter finalizes panics in a function that cannot unwind, and the
process aborts (SIGABRT) instead of exiting with its status: a supervisor then reads a
crash from a bot that had cleanly reported LiveKit unreachable (seen once in CI).
Everything the process must leave behind (control messages, spans, log lines) is out
before its `main` returns, so finalization has nothing left to do.
"""

import os
import sys
from typing import NoReturn


def exit_now(status: int) -> NoReturn:
    """Flush standard output and error, then exit with `status`, skipping finalization."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
