"""The boundary between session bookkeeping and however bots are actually run.

`SessionManager` only needs these two shapes; `ProcessBackend` (child processes with a
warm pool) is one implementation, and a backend that dispatches bots to worker hosts
can be another, reporting through the same `BotStatus`.
"""

from typing import Literal, Protocol

from bot.launch import Assignment
from server.bot_status import BotStatus

# Where a session's bot came from: loaded in advance, or started for the session.
Pool = Literal["warm", "cold"]


class BotHandle(Protocol):
    """One bot serving one room, as the session manager sees it."""

    status: BotStatus
    stop_requested: bool
    pool: Pool

    @property
    def pid(self) -> int | None:
        """An operating-system pid, when the bot is a local process."""
        ...

    async def wait(self) -> int:
        """Wait until the bot has ended; its exit status (0 for a normal end)."""
        ...

    async def stop(self, grace_s: float) -> int:
        """Ask the bot to end, forcing it after `grace_s`; its exit status."""
        ...


class BotBackend(Protocol):
    """Starts bots for rooms."""

    @property
    def standby_count(self) -> int:
        """Bots loaded in reserve, ready for a room."""
        ...

    async def start(self) -> None:
        """Get ready to launch (for example, warm standby bots)."""
        ...

    async def launch(self, assignment: Assignment) -> BotHandle:
        """A bot working on `assignment`; raises OSError when none could be started."""
        ...

    async def close(self) -> None:
        """Launch nothing more and release what is held in reserve; idempotent."""
        ...
