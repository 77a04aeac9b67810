"""The session server's Prometheus metrics, and its bots', served together on `/metrics`.

Every label is a closed vocabulary (a pool, a reason code, an HTTP status, an endpoint
path); no room name, identity or text ever becomes one.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from bot.settings import Settings
from server.bot_backend import Pool
from server.bot_metrics_dir import BotMetricsDirectory

FailureReason = Literal[
    "spawn_failed", "join_timeout", "reported_failure", "exited_before_joining", "crashed"
]
BOT_START_BUCKETS_S = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 15.0, 30.0, 60.0)


class ServerMetrics:
    """One private registry: this process's metrics plus the bots' multiprocess files."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._bots = BotMetricsDirectory()
        self._bots.register(self.registry)
        r = self.registry
        self._sessions_active = Gauge(
            "voice_agent_sessions_active", "Conversations with a bot right now", registry=r
        )
        self._warm_pool = Gauge(
            "voice_agent_warm_pool_bots", "Standby bots loaded and waiting for a room", registry=r
        )
        self._started = Counter(
            "voice_agent_sessions_started",
            "Sessions started, by where the bot came from",
            ["pool"],
            registry=r,
        )
        self._failed = Counter(
            "voice_agent_sessions_failed",
            "Sessions whose bot could not start, never joined, or exited with an error",
            ["reason"],
            registry=r,
        )
        self._bot_start = Histogram(
            "voice_agent_bot_start_seconds",
            "From /connect to the bot in its room",
            ["pool"],
            buckets=BOT_START_BUCKETS_S,
            registry=r,
        )
        self.connect_responses = Counter(
            "voice_agent_connect_responses",
            "Answers to POST /connect, by HTTP status",
            ["status"],
            registry=r,
        )
        self.rate_limited = Counter(
            "voice_agent_rate_limited",
            "Requests refused with 429 by the per-client rate limit",
            ["endpoint"],
            registry=r,
        )

    @property
    def bot_directory(self) -> Path:
        """Where the bots write their metrics."""
        return self._bots.path

    def watch(self, sessions: Callable[[], int], standby: Callable[[], int]) -> None:
        """Read the live session and standby counts at each scrape."""
        self._sessions_active.set_function(sessions)
        self._warm_pool.set_function(standby)

    def bot_settings(self, settings: Settings) -> Settings:
        """The settings bots start with: writing their metrics where this server reads them."""
        return self._bots.bot_settings(settings)

    def session_started(self, pool: Pool) -> None:
        """A bot was spawned (or a standby one handed a room) for a new session."""
        self._started.labels(pool=pool).inc()

    def bot_joined(self, pool: Pool, seconds: float) -> None:
        """A session's bot is in its room, `seconds` after /connect asked for it."""
        self._bot_start.labels(pool=pool).observe(seconds)

    def session_failed(self, reason: FailureReason) -> None:
        """A session ended for a reason other than the conversation being over."""
        self._failed.labels(reason=reason).inc()

    def bot_reaped(self, pid: int | None) -> None:
        """A bot process has exited and been reaped."""
        if pid is not None:
            self._bots.process_exited(pid)

    def render(self) -> bytes:
        """Everything, in Prometheus's text exposition format."""
        return generate_latest(self.registry)

    def close(self) -> None:
        """Remove the bots' metrics directory (the server is stopping)."""
        self._bots.remove()
