"""One room's conversation context: restored when a bot joins, saved after every turn."""

from typing import Any

from pipecat.processors.aggregators.llm_context import LLMContext

from bot.context_store import ContextStore, open_context_store
from bot.settings import Settings


class SavedConversation:
    """The LLM context of one room, kept in the context store as it grows.

    A bot that replaces one on a dead worker finds the conversation so far here, so
    nothing the user said is lost.
    """

    def __init__(self, store: ContextStore, room: str, messages: list[Any] | None) -> None:
        self._store = store
        self._room = room
        self.context = LLMContext(messages)
        self.resumed = bool(messages)

    @classmethod
    async def open(cls, settings: Settings, room: str) -> "SavedConversation":
        """The room's conversation, resumed from the store when one was saved."""
        store = open_context_store(settings)
        return cls(store, room, await store.load(room))

    async def save(self) -> None:
        """Store the messages as they are now."""
        messages = [dict(m) for m in self.context.get_messages() if isinstance(m, dict)]
        await self._store.save(self._room, messages)

    async def forget(self) -> None:
        """The conversation ended normally: nothing to resume."""
        await self._store.delete(self._room)

    async def close(self) -> None:
        """Release the store."""
        await self._store.close()
