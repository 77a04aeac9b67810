"""Speech fetched before it is spoken, so speaking it does not wait for the engine."""

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator


class PreparedSpeech:
    """Reads a synthesis response in the background; `pieces` replays it as it arrives.

    The bot knows its opening line before anyone is in the room: fetched while the
    person's client joins, the greeting starts the moment they can hear it instead of
    a time to first byte later. What was read stays in memory until it is replayed or
    the speech is cancelled.
    """

    def __init__(self, source: AsyncIterator[bytes]) -> None:
        """Start reading `source` now."""
        self._queue: asyncio.Queue[bytes | Exception | None] = asyncio.Queue()
        self._failed_empty = False
        self._task = asyncio.create_task(self._read(source))

    @property
    def failed_empty(self) -> bool:
        """Whether the source has failed without yielding anything: nothing to replay."""
        return self._failed_empty

    async def _read(self, source: AsyncIterator[bytes]) -> None:
        read_any = False
        try:
            async for piece in source:
                read_any = True
                self._queue.put_nowait(piece)
        except Exception as e:
            self._failed_empty = not read_any
            self._queue.put_nowait(e)
        else:
            self._queue.put_nowait(None)

    async def pieces(self) -> AsyncGenerator[bytes, None]:
        """What the source yielded, in order, waiting for what has not come yet.

        Raises:
            Exception: whatever the source raised, once the pieces before it are out.
        """
        try:
            while (item := await self._queue.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            self._task.cancel()  # a replay cut short (an interruption) closes the request

    def cancel(self) -> None:
        """Stop reading; the request closes."""
        self._task.cancel()
