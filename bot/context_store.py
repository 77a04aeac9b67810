"""Where a room's conversation context lives between bots.

Each bot saves the LLM context after every turn and restores it when it joins, so a
bot that replaces one on a dead worker carries on the same conversation. With
REDIS_URL the context is shared by every machine; without it, it lives in the bot's
own memory and a replacement bot starts afresh.
"""

from abc import ABC, abstractmethod
from typing import Any

from bot.settings import Settings

Messages = list[dict[str, Any]]


class ContextStore(ABC):
    """Conversation messages per room."""

    @abstractmethod
    async def load(self, room: str) -> Messages | None:
        """The room's saved messages, or None when there is no conversation to resume."""

    @abstractmethod
    async def save(self, room: str, messages: Messages) -> None:
        """Replace the room's saved messages."""

    @abstractmethod
    async def delete(self, room: str) -> None:
        """Forget the room's conversation (it ended normally)."""

    async def close(self) -> None:  # noqa: B027  (only some stores hold connections)
        """Release connections."""


def open_context_store(settings: Settings) -> ContextStore:
    """Redis when REDIS_URL is set, otherwise this process's memory."""
    if settings.redis_url is None:
        from bot.memory_context_store import MemoryContextStore

        return MemoryContextStore()
    from bot.redis_context_store import RedisContextStore

    return RedisContextStore(settings.redis_url.get_secret_value(), ttl_s=settings.context_ttl_s)
