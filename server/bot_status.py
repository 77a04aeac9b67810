"""What the server knows of a bot's session, whichever channel reports it."""

import asyncio
from dataclasses import dataclass, field

from bot.control import ControlMessage


@dataclass
class BotStatus:
    """Whether the bot is in its room, why it ended, what failed.

    The process backend fills it from the bot's control pipe; a backend that hosts bots
    elsewhere can fill it from the SFU's view of the room. Nothing here comes from logs.
    """

    joined: asyncio.Event = field(default_factory=asyncio.Event)
    failed: asyncio.Event = field(default_factory=asyncio.Event)
    end_reason: str | None = None
    error_reason: str | None = None
    error_detail: str | None = None

    def apply(self, message: ControlMessage) -> None:
        """Take in one message from the bot."""
        if message.event == "joined":
            self.joined.set()
        elif message.event == "ended":
            self.end_reason = message.reason
        else:
            self.error_reason = message.reason or "unknown"
            self.error_detail = message.detail
            self.failed.set()

    async def joined_within(self, seconds: float) -> bool:
        """Wait until the bot joins its room or reports a failure, at most `seconds`.

        Returns:
            Whether it joined.
        """
        waits = [asyncio.ensure_future(event.wait()) for event in (self.joined, self.failed)]
        try:
            await asyncio.wait(waits, timeout=max(seconds, 0), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
        return self.joined.is_set()

    @property
    def failure(self) -> str | None:
        """The reported failure as `sentence (code)`, if any."""
        if self.error_reason is None:
            return None
        return f"{self.error_detail or 'the bot reported an error'} ({self.error_reason})"
