"""CPU and memory of process trees, read from /proc (Linux)."""

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def tasks_of(pid: int) -> list[Path]:
    """The /proc directories of a process's threads (none once it is gone)."""
    try:
        return list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return []


def stat_cpu_seconds(stat: Path) -> float:
    """User plus system CPU time in a process's or thread's `stat` file (OSError if gone)."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def descendants(pid: int) -> list[int]:
    """Every process under `pid` (not `pid` itself), depth first."""
    out: list[int] = []
    for task in tasks_of(pid):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            out += [child, *descendants(child)]
    return out


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (0 once it is gone)."""
    try:
        return stat_cpu_seconds(Path(f"/proc/{pid}/stat"))
    except OSError:
        return 0.0


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (0 once it is gone)."""
    try:
        resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except OSError:
        return 0.0
    return resident * PAGE / 1e6


def memory_mb(pid: int) -> dict[str, float]:
    """RSS, PSS (shared pages split among their users) and USS (private) of `pid`, in MB."""
    fields: dict[str, float] = defaultdict(float)
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return {}
    for line in lines[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0]) / 1000
    uss = fields["Private_Clean"] + fields["Private_Dirty"]
    return {"rss": fields["Rss"], "pss": fields["Pss"], "uss": uss, "anon": fields["Anonymous"]}


@dataclass
class TreeUsage:
    """What a set of processes used between `start` and `stop`."""

    cpu_s: float
    wall_s: float
    # Processes that did work in the window (> 0.05 s of CPU), and their peak RSS.
    active_rss_mb: list[float]
    # The same processes' PSS at the window's end: what each costs when pages are shared
    # (bots forked from one fork server share its imports).
    active_pss_mb: list[float]

    @property
    def cores(self) -> float:
        """Average cores busy over the window."""
        return self.cpu_s / self.wall_s if self.wall_s else 0.0


class TreeMeter:
    """Samples the processes under some roots; CPU of processes that ended is kept."""

    def __init__(self, roots: list[int], *, include_roots: bool = False) -> None:
        self.roots = roots
        self.include_roots = include_roots
        self._start: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._peak_rss: dict[int, float] = {}
        self._started_at = 0.0

    def _pids(self) -> list[int]:
        pids = [p for root in self.roots for p in descendants(root)]
        return pids + (self.roots if self.include_roots else [])

    def start(self, now: float) -> None:
        """Begin the window."""
        self._started_at = now
        self._start = {pid: cpu_seconds(pid) for pid in self._pids()}
        self._last = dict(self._start)
        self._peak_rss = {}

    def sample(self) -> None:
        """Note CPU and RSS now (call every second or so during the window)."""
        for pid in self._pids():
            self._start.setdefault(pid, 0.0)  # born in the window: all its CPU counts
            used = cpu_seconds(pid)
            if used:
                self._last[pid] = used
                self._peak_rss[pid] = max(self._peak_rss.get(pid, 0.0), rss_mb(pid))

    def stop(self, now: float) -> TreeUsage:
        """End the window."""
        self.sample()
        spent = {pid: self._last.get(pid, 0.0) - start for pid, start in self._start.items()}
        active = [pid for pid, s in spent.items() if s > 0.05 and pid in self._peak_rss]
        sampled = [pid for pid in spent if pid in self._peak_rss]
        if not active and sampled:
            # A short, light window (one quick turn): the busiest process is the session's.
            active = [max(sampled, key=spent.__getitem__)]
        pss = [memory_mb(pid).get("pss") for pid in active]
        return TreeUsage(
            sum(spent.values()),
            now - self._started_at,
            [self._peak_rss[pid] for pid in active],
            [mb for mb in pss if mb is not None],
        )
