"""The context store of one process: nothing outlives the bot."""

import copy

from bot.context_store import ContextStore, Messages


class MemoryContextStore(ContextStore):
    """Keeps each room's messages in a dict."""

    def __init__(self) -> None:
        self._rooms: dict[str, Messages] = {}

    async def load(self, room: str) -> Messages | None:
        """The room's saved messages, if any."""
        saved = self._rooms.get(room)
        return copy.deepcopy(saved) if saved else None

    async def save(self, room: str, messages: Messages) -> None:
        """Keep a copy, so later changes to the live context do not leak in."""
        self._rooms[room] = copy.deepcopy(messages)

    async def delete(self, room: str) -> None:
        """Forget the room."""
        self._rooms.pop(room, None)
