"""The directory bots write their Prometheus metrics into, and how the server reads it."""

import tempfile
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from bot.settings import Settings


class BotMetricsDirectory:
    """A private directory, fresh for each server run, for prometheus-client's multiprocess mode.

    Each bot memory-maps its own files there (named by its pid) and the server sums them
    at every scrape, so a short-lived bot needs no port of its own and its counts
    outlive it. The directory (mode 0700) is removed when the server stops.
    """

    def __init__(self) -> None:
        self._directory = tempfile.TemporaryDirectory(prefix="voice-agent-metrics-")
        self.path = Path(self._directory.name)

    def bot_settings(self, settings: Settings) -> Settings:
        """`settings` as a bot should see them: writing its metrics here."""
        return settings.model_copy(update={"prometheus_multiproc_dir": self.path})

    def register(self, registry: CollectorRegistry) -> None:
        """Serve the bots' summed metrics from `registry`."""
        MultiProcessCollector(registry, path=str(self.path))

    def process_exited(self, pid: int) -> None:
        """Forget a reaped bot's live gauges; its counters and histograms still count."""
        mark_process_dead(pid, str(self.path))

    def remove(self) -> None:
        """Delete the directory and everything in it."""
        self._directory.cleanup()
