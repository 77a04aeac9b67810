"""The directory bots write their Prometheus metrics into, and how the server reads it."""

import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from bot.settings import Settings

# Kinds of files whose values add up across processes, and so can be folded together.
_SUMMED_KINDS = ("counter", "histogram")


class BotMetricsDirectory:
    """A private directory, fresh for each server run, for prometheus-client's multiprocess mode.

    Each bot memory-maps its own files there (named by its pid) and the server sums them
    at every scrape, so a short-lived bot needs no port of its own and its counts
    outlive it. When a bot is reaped its files are folded into one archive file per
    kind, so a server that has run thousands of bots still reads a handful of files per
    scrape. The directory (mode 0700) is removed when the server stops.
    """

    def __init__(self) -> None:
        self._directory = tempfile.TemporaryDirectory(prefix="voice-agent-metrics-")
        self.path = Path(self._directory.name)
        # A scrape must never see a bot's values both in its own file and in the archive,
        # nor a file vanish under it.
        self._lock = threading.Lock()
        self._collector = MultiProcessCollector(None, path=str(self.path))

    def bot_settings(self, settings: Settings) -> Settings:
        """`settings` as a bot should see them: writing its metrics here."""
        return settings.model_copy(update={"prometheus_multiproc_dir": self.path})

    def register(self, registry: CollectorRegistry) -> None:
        """Serve the bots' summed metrics from `registry`."""
        registry.register(self)

    def collect(self) -> Iterable[Metric]:
        """Every bot's metrics, summed (called by the registry at each scrape)."""
        with self._lock:
            return list(self._collector.collect())

    def process_exited(self, pid: int) -> None:
        """Forget a reaped bot's live gauges and fold its counts into the archive."""
        with self._lock:
            mark_process_dead(pid, str(self.path))
            for kind in _SUMMED_KINDS:
                dead = self.path / f"{kind}_{pid}.db"
                if dead.exists():
                    self._fold(dead, self.path / f"{kind}_archive.db")
                    dead.unlink()

    @staticmethod
    def _fold(source: Path, archive_path: Path) -> None:
        archive = MmapedDict(str(archive_path))
        try:
            for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(str(source)):
                total, _ = archive.read_value(key)
                archive.write_value(key, total + value, timestamp)
        finally:
            archive.close()

    def remove(self) -> None:
        """Delete the directory and everything in it."""
        with self._lock:
            self._directory.cleanup()
