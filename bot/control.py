"""The bot's side of the control channel: what it tells its supervisor, one JSON line each.

The session server must know when a bot is in its room, why it ended and what went
wrong, whatever the log level; so the bot says it on a dedicated pipe (the
`--control-fd` of `bot/launch.py`) instead of in a log line. A bot nobody supervises
(run by hand, or hosted by a worker that watches the SFU instead) gets `NoControl`.
"""

import json
import os
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

from loguru import logger

ControlEvent = Literal["joined", "ended", "error"]
# Why a session ended, or what failed; codes, never free text from the conversation.
# `worker_stopped`: a worker host stopped the bot mid-conversation (its drain ran out);
# the session server gives the room to another worker.
EndReason = Literal[
    "room_empty",
    "nobody_came",
    "sfu_disconnected",
    "signal",
    "worker_stopped",
    "pipeline_ended",
    "failed",
]
ErrorReason = Literal["livekit_unreachable", "bad_configuration", "bad_assignment", "crashed"]
# A detail is one sentence; a pipe write this small is atomic.
_MAX_DETAIL_CHARS = 1000


@dataclass(frozen=True)
class ControlMessage:
    """One message from bot to supervisor: an event, a reason code, a sentence for operators."""

    event: ControlEvent
    reason: str | None = None
    detail: str | None = None

    def to_line(self) -> bytes:
        """The message as one JSON line."""
        body = {k: v for k, v in asdict(self).items() if v is not None}
        return (json.dumps(body, separators=(",", ":")) + "\n").encode()

    @classmethod
    def from_line(cls, line: bytes) -> "ControlMessage":
        """Parse one line; raises ValueError when it is not a control message."""
        body: Any = json.loads(line)
        if not isinstance(body, dict) or body.get("event") not in get_args(ControlEvent):
            raise ValueError("not a control message")
        reason, detail = body.get("reason"), body.get("detail")
        if not all(v is None or isinstance(v, str) for v in (reason, detail)):
            raise ValueError("reason and detail must be strings")
        return cls(event=body["event"], reason=reason, detail=detail)


class NoControl:
    """The channel of a bot nobody supervises: every message goes nowhere."""

    def joined(self) -> None:
        """The bot is in its room."""

    def ended(self, reason: EndReason) -> None:
        """The session is over, for `reason`."""

    def error(self, reason: ErrorReason, detail: str) -> None:
        """Something failed; `detail` is one sentence for operators, free of secrets."""


class ControlChannel(NoControl):
    """The write end of the control pipe a supervisor passed as file descriptor `fd`.

    Writes are small and blocking (a pipe takes 64 KiB before it blocks, and the server
    reads continuously). A supervisor that went away must not take the bot down: a
    broken pipe is logged once and later messages are dropped.
    """

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd
        os.set_inheritable(fd, False)

    def joined(self) -> None:
        """The bot is in its room."""
        self._send(ControlMessage("joined"))

    def ended(self, reason: EndReason) -> None:
        """The session is over, for `reason`."""
        self._send(ControlMessage("ended", reason=reason))

    def error(self, reason: ErrorReason, detail: str) -> None:
        """Something failed; `detail` is one sentence for operators, free of secrets."""
        self._send(ControlMessage("error", reason=reason, detail=detail[:_MAX_DETAIL_CHARS]))

    def _send(self, message: ControlMessage) -> None:
        if self._fd is None:
            return
        try:
            os.write(self._fd, message.to_line())
        except OSError as e:
            logger.warning(f"The supervisor's control channel is gone ({e.strerror or e})")
            self._fd = None
