"""The rooms a worker host has room for: running jobs plus the ones being accepted."""

from collections.abc import Iterable


class JobSlots:
    """Admits at most `capacity` jobs: those running and those accepted but not yet running.

    livekit-agents' own availability check (`load_threshold`) is not enough: it divides a
    load computed a moment earlier, in a thread, by the current count of running jobs, so
    requests arriving as a job starts see each job as lighter than it is (a worker of four
    accepted five requests that came within 30 ms).
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._accepting: set[str] = set()

    def take(self, job_id: str, running: Iterable[str]) -> bool:
        """Claim a slot for `job_id`, given the ids of the running jobs; False when full."""
        if len(set(running) | self._accepting) >= self._capacity:
            return False
        self._accepting.add(job_id)
        return True

    def release(self, job_id: str) -> None:
        """`job_id` is running now (or failed to start): it counts among the running jobs."""
        self._accepting.discard(job_id)
