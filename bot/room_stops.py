"""How a worker host stops the rooms it runs in its own job threads."""

import asyncio
import threading

from bot.control import EndReason


class RoomStops:
    """The stop requests of the rooms running in this process, each on its own thread's loop.

    A room in a job process is stopped by a signal; one in a job thread cannot install
    signal handlers (only the main thread can), so it registers here instead.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rooms: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Queue[EndReason]]] = {}

    def add(self, job_id: str) -> asyncio.Queue[EndReason]:
        """Register the calling loop's room; the queue yields the reason it must stop."""
        requests: asyncio.Queue[EndReason] = asyncio.Queue()
        with self._lock:
            self._rooms[job_id] = (asyncio.get_running_loop(), requests)
        return requests

    def discard(self, job_id: str) -> None:
        """The room has ended: nothing left to stop."""
        with self._lock:
            self._rooms.pop(job_id, None)

    def stop_all(self, reason: EndReason) -> None:
        """Ask every registered room to stop, from any thread."""
        with self._lock:
            rooms = list(self._rooms.values())
        for loop, requests in rooms:
            loop.call_soon_threadsafe(requests.put_nowait, reason)
