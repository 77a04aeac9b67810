"""The context store shared by every worker: one Redis key per room, with a lifetime."""

import json

import redis.asyncio as redis
from loguru import logger

from bot.context_store import ContextStore, Messages

KEY_PREFIX = "voice-agent:context:"
# A save that cannot reach Redis must not hold up the conversation for long.
REDIS_TIMEOUT_S = 1.0


class RedisContextStore(ContextStore):
    """Each room's messages as one JSON value that expires `ttl_s` after the last turn.

    Failures are logged and swallowed: losing the ability to resume is better than
    losing the conversation in progress.
    """

    def __init__(self, url: str, *, ttl_s: float) -> None:
        self._redis = redis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
        )
        self._ttl_ms = int(ttl_s * 1000)

    async def load(self, room: str) -> Messages | None:
        """The room's saved messages; None when there are none or Redis is unreachable."""
        try:
            raw = await self._redis.get(KEY_PREFIX + room)
        except redis.RedisError as e:
            logger.warning(f"Could not read the saved conversation: {type(e).__name__}")
            return None
        if raw is None:
            return None
        messages = json.loads(raw)
        return messages if isinstance(messages, list) and messages else None

    async def save(self, room: str, messages: Messages) -> None:
        """Store the messages and restart their lifetime."""
        try:
            await self._redis.set(KEY_PREFIX + room, json.dumps(messages), px=self._ttl_ms)
        except redis.RedisError as e:
            logger.warning(f"Could not save the conversation: {type(e).__name__}")

    async def delete(self, room: str) -> None:
        """Remove the room's key."""
        try:
            await self._redis.delete(KEY_PREFIX + room)
        except redis.RedisError as e:
            logger.warning(f"Could not delete the saved conversation: {type(e).__name__}")

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()
