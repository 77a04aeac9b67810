"""Per-client token buckets, so one caller cannot mint tokens or spawn bots in a loop."""

import time

_MAX_TRACKED_CLIENTS = 10_000


class RateLimiter:
    """Allows `per_minute` requests a minute per client, in bursts of up to that many."""

    def __init__(self, per_minute: int) -> None:
        self._capacity = float(per_minute)
        self._refill_per_s = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}

    def retry_after(self, client: str) -> float | None:
        """Take one request from `client`'s bucket; seconds to wait when it is empty."""
        now = time.monotonic()
        tokens, last = self._buckets.get(client, (self._capacity, now))
        tokens = min(self._capacity, tokens + (now - last) * self._refill_per_s)
        if tokens < 1:
            self._buckets[client] = (tokens, now)
            return (1 - tokens) / self._refill_per_s
        self._buckets[client] = (tokens - 1, now)
        if len(self._buckets) > _MAX_TRACKED_CLIENTS:
            self._forget_idle(now)
        return None

    def _forget_idle(self, now: float) -> None:
        """Drop clients whose bucket has refilled: they are indistinguishable from new ones."""
        full_after = self._capacity / self._refill_per_s
        self._buckets = {
            client: (tokens, last)
            for client, (tokens, last) in self._buckets.items()
            if now - last < full_after
        }
