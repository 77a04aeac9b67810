"""How busy the machine's CPUs have been lately, to refuse a session it cannot serve.

The server's bots share the machine's cores. Past what they can carry, every
conversation slows at once instead of one being turned away: on 2 cores, 8 at once
answered after 2.4 s instead of 0.7 s (README, conversations at once). /proc/stat's
counters, read every second, give the busy share of all cores over the last window.
"""

import asyncio
import time
from collections import deque
from collections.abc import Callable

SAMPLE_EVERY_S = 1.0


def read_cpu_times(path: str = "/proc/stat") -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot."""
    with open(path) as stat:
        # user nice system idle iowait irq softirq steal (guest time is inside user).
        ticks = [int(value) for value in stat.readline().split()[1:9]]
    idle = ticks[3] + ticks[4]
    return sum(ticks) - idle, sum(ticks)


class CpuBusy:
    """The busy fraction of all CPUs over about the last `window_s`, sampled by `run`."""

    def __init__(
        self,
        window_s: float,
        read: Callable[[], tuple[int, int]] = read_cpu_times,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Start with no sample: no fraction until two are taken."""
        self._window_s = window_s
        self._read = read
        self._clock = clock
        self._samples: deque[tuple[float, int, int]] = deque()

    def sample(self) -> None:
        """Read the counters; keep the newest sample at least a window old, and later ones."""
        now = self._clock()
        self._samples.append((now, *self._read()))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self._window_s:
            self._samples.popleft()

    @property
    def fraction(self) -> float | None:
        """Busy ticks over all ticks between the oldest sample kept and the newest."""
        if len(self._samples) < 2:
            return None
        (_, busy_then, total_then), (_, busy_now, total_now) = self._samples[0], self._samples[-1]
        ticks = total_now - total_then
        return (busy_now - busy_then) / ticks if ticks > 0 else None

    async def run(self) -> None:
        """Sample every `SAMPLE_EVERY_S` until cancelled."""
        while True:
            self.sample()
            await asyncio.sleep(SAMPLE_EVERY_S)
