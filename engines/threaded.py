"""Run a blocking generator (a model's token or audio stream) in a worker thread."""

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()


async def stream_in_thread(produce: Callable[[], Iterator[T]]) -> AsyncIterator[T]:
    """Yield what `produce()` yields, as it yields it; stop it when the caller stops."""
    loop = asyncio.get_running_loop()
    items: asyncio.Queue[object] = asyncio.Queue()
    stopped = threading.Event()

    def pump() -> None:
        try:
            for item in produce():
                if stopped.is_set():
                    break
                loop.call_soon_threadsafe(items.put_nowait, item)
        finally:
            loop.call_soon_threadsafe(items.put_nowait, _END)

    worker = asyncio.create_task(asyncio.to_thread(pump))
    try:
        while (item := await items.get()) is not _END:
            yield item  # type: ignore[misc]
    finally:
        stopped.set()
        await worker
