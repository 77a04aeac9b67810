"""The conversation context store: in memory, and in a real redis-server."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.context_store import ContextStore
from bot.memory_context_store import MemoryContextStore
from bot.redis_context_store import RedisContextStore
from bot.saved_conversation import SavedConversation
from tests.livekit_server import free_tcp_port
from tests.redis_server import RedisServer

pytestmark = pytest.mark.unit

TURNS = [
    {"role": "user", "content": "Book a table for two."},
    {"role": "assistant", "content": "For which evening?"},
]


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    server = await RedisServer.start(tmp_path)
    yield server
    server.stop()


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ContextStore]:
    if request.param == "memory":
        yield MemoryContextStore()
        return
    server = await RedisServer.start(tmp_path)
    redis_store = RedisContextStore(server.url, ttl_s=60)
    yield redis_store
    await redis_store.close()
    server.stop()


async def test_a_saved_conversation_is_loaded_back_until_deleted(store: ContextStore) -> None:
    assert await store.load("room-a") is None
    await store.save("room-a", TURNS)
    assert await store.load("room-a") == TURNS
    assert await store.load("room-b") is None, "rooms are kept apart"
    await store.delete("room-a")
    assert await store.load("room-a") is None


async def test_later_changes_to_the_live_messages_do_not_reach_the_store(
    store: ContextStore,
) -> None:
    live = [dict(m) for m in TURNS]
    await store.save("room-a", live)
    live.append({"role": "user", "content": "Unsaved."})
    assert await store.load("room-a") == TURNS


async def test_a_redis_conversation_expires_after_its_lifetime(redis_server: RedisServer) -> None:
    store = RedisContextStore(redis_server.url, ttl_s=0.3)
    try:
        await store.save("room-a", TURNS)
        assert await store.load("room-a") == TURNS
        await asyncio.sleep(0.5)
        assert await store.load("room-a") is None
    finally:
        await store.close()


async def test_an_unreachable_redis_loses_resuming_not_the_conversation() -> None:
    store = RedisContextStore(f"redis://127.0.0.1:{free_tcp_port()}/0", ttl_s=60)
    try:
        await store.save("room-a", TURNS)  # logged, not raised
        assert await store.load("room-a") is None
        await store.delete("room-a")
    finally:
        await store.close()


async def test_a_second_bot_resumes_what_the_first_saved(redis_server: RedisServer) -> None:
    from tests.conftest import server_settings

    settings = server_settings(redis_url=redis_server.url)
    first = await SavedConversation.open(settings, "room-a")
    assert not first.resumed
    for message in TURNS:
        first.context.add_message(message)  # type: ignore[arg-type]
        await first.save()
    await first.close()

    second = await SavedConversation.open(settings, "room-a")
    assert second.resumed and second.context.get_messages() == TURNS
    await second.forget()
    await second.close()
    third = await SavedConversation.open(settings, "room-a")
    assert not third.resumed, "a conversation that ended normally is not resumed"
    await third.close()
