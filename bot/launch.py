"""How a supervisor launches a bot: the one definition the server, its warm pool and the bot share.

A supervised bot is started as `BOT_COMMAND --standby --control-fd N`, with exactly the
environment `bot_environment` builds (and no `.env` of its own), and is handed its room
as one JSON line on standard input: `{"room": "...", "trace_context": {...}}`. A cold
start is a standby start whose line is written at once, so both paths are the same code.
A supervisor may instead start `BOT_COMMAND --fork-server FD` once (`bot/fork_server.py`)
and fork bots from it: each fork continues as that standby command line would.
The bot answers on file descriptor N (see `bot/control.py`), never through its logs.
`python -m bot --room NAME`, run by hand, is the unsupervised form.
"""

import json
import os
import shlex
import sys
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from bot.names import NAME_RULE, is_valid_name
from bot.settings import SERVER_ONLY_FIELDS, Settings

STANDBY_FLAG = "--standby"
FORK_SERVER_FLAG = "--fork-server"
ROOM_FLAG = "--room"
CONTROL_FD_FLAG = "--control-fd"
# The hand-over line is small; anything longer is not one.
MAX_ASSIGNMENT_BYTES = 16 * 1024

# Exit codes of `python -m bot`.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_LIVEKIT_UNREACHABLE = 3

# Process basics a Python program needs to start and find its packages.
_PASSTHROUGH = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TZ",
    "TMPDIR",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "HF_HOME",
    "HF_HUB_OFFLINE",
)


class AssignmentError(ValueError):
    """The hand-over line is not a valid assignment; the message is one safe sentence."""


@dataclass(frozen=True)
class Assignment:
    """What a bot is told to do: which room to serve, and the trace it belongs to.

    `trace_context` is a W3C trace-context carrier (`traceparent`, `tracestate`), empty
    when the supervisor traces nothing; the bot's spans join that trace.
    """

    room: str
    trace_context: dict[str, str] = field(default_factory=dict)

    def to_line(self) -> bytes:
        """The hand-over line, newline included."""
        body = {"room": self.room, "trace_context": self.trace_context}
        return (json.dumps(body, separators=(",", ":")) + "\n").encode()

    @classmethod
    def from_line(cls, line: str) -> "Assignment":
        """Parse and check one hand-over line.

        Raises:
            AssignmentError: naming what is wrong, without echoing the line.
        """
        if len(line.encode()) > MAX_ASSIGNMENT_BYTES:
            raise AssignmentError(f"the assignment is over {MAX_ASSIGNMENT_BYTES} bytes")
        try:
            body: Any = json.loads(line)
        except ValueError:
            raise AssignmentError("the assignment is not a JSON object") from None
        if not isinstance(body, dict):
            raise AssignmentError("the assignment is not a JSON object")
        unknown = sorted(set(body) - {"room", "trace_context"})
        if unknown:
            raise AssignmentError(f"the assignment has unknown fields: {', '.join(unknown)}")
        room = body.get("room")
        if not isinstance(room, str) or not is_valid_name(room):
            raise AssignmentError(f"the assignment's room must be {NAME_RULE}")
        context = body.get("trace_context", {})
        if not isinstance(context, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in context.items()
        ):
            raise AssignmentError("the assignment's trace_context must map strings to strings")
        return cls(room=room, trace_context=context)


def supervised_argv(command: str, control_fd: int) -> list[str]:
    """The command line of a supervised bot: `BOT_COMMAND --standby --control-fd N`.

    A leading `python` in `BOT_COMMAND` means the supervisor's own interpreter.
    """
    return [*_argv(command), STANDBY_FLAG, CONTROL_FD_FLAG, str(control_fd)]


def fork_server_argv(command: str, sock_fd: int) -> list[str]:
    """The command line of a bot fork server: `BOT_COMMAND --fork-server FD`."""
    return [*_argv(command), FORK_SERVER_FLAG, str(sock_fd)]


def forked_argv(fork_server_args: list[str], control_fd: int) -> list[str]:
    """A forked bot's arguments: its fork server's, as a spawned standby's would be."""
    at = fork_server_args.index(FORK_SERVER_FLAG)
    rest = fork_server_args[:at] + fork_server_args[at + 2 :]
    return [*rest, STANDBY_FLAG, CONTROL_FD_FLAG, str(control_fd)]


def _argv(command: str) -> list[str]:
    argv = shlex.split(command)
    if argv[0] in {"python", "python3"}:
        argv[0] = sys.executable
    return argv


def env_value(value: object) -> str:
    """A setting's value as an environment variable spells it."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


def bot_environment(settings: Settings) -> dict[str, str]:
    """A supervised bot's whole environment: every bot setting, none of the server's.

    Server-only settings such as ADMIN_TOKEN are left out; of the supervisor's own
    environment only the process basics (PATH, HOME, locale, virtualenv) pass. Bots log
    JSON whatever the server's format, because the server re-logs their lines.
    """
    env = {name: os.environ[name] for name in _PASSTHROUGH if name in os.environ}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if name not in SERVER_ONLY_FIELDS and value is not None:
            env[name.upper()] = env_value(value)
    env["LOG_FORMAT"] = "json"
    env["PYTHONUNBUFFERED"] = "1"
    # A bot does no linear algebra worth a thread pool, and a fork server must not
    # have started one (OpenBLAS does on import) when it forks.
    env["OPENBLAS_NUM_THREADS"] = "1"
    return env
