"""`python -m bench soak`: many short conversations through the real SFU, then a leak check.

Starts the test stack (livekit-server, the engine stand-ins, the real session server
spawning real bots), holds `--sequential` conversations one after another, then
`--parallel-total` more, `--parallel` at a time. Each one joins through `/connect`, hears
the greeting, asks one question, hears the reply and leaves. Once everything has
settled it reports, against a baseline taken after `--warmup` conversations:

- bots still alive (beyond the warm pool), wherever they are parented: goal 0
- the session server's open file descriptors: goal 0 growth
- the session server's RSS: goal under 5 % growth
- rooms livekit-server still has open (RoomService ListRooms): goal 0
- sessions `/sessions` still lists: goal 0

Figures are printed and written as JSON under bench/results/. Every wait is bounded, and
no conversation starts after `--max-minutes`. Exit status 1 when a goal is missed, a
conversation failed or the run was cut short.
"""

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from livekit import api

from bench.stats import percentile
from bot.fork_server import NAME as FORK_SERVER_NAME
from tests.conftest import SECRETS
from tests.conversation import ConversationFailed, converse
from tests.speech import Speaker
from tests.stack import GREETING, Stack, start_stack

SUMMARY = "many short conversations through the real SFU, then a leak check"
RESULTS = Path(__file__).resolve().parent / "results"
QUESTION = "What time is it?"
REPLY = "Quarter past nine."
RSS_GROWTH_GOAL_PCT = 5.0
SETTLE_TIMEOUT_S = 60.0  # livekit-server closes an empty room 20 s after the last one left
POLL_S = 0.5
# Before reading the server's descriptors: time for it to close the connection of the
# request that just checked on it.
QUIET_S = 1.0


@dataclass
class SoakOptions:
    """How many conversations, how many at once, and the time bound."""

    sequential: int = 200
    parallel: int = 10
    parallel_total: int = 50
    warmup: int = 2
    max_minutes: float = 90.0


@dataclass
class ServerFootprint:
    """What the session server holds at one moment."""

    open_fds: int
    rss_kib: int
    children: list[int]


@dataclass
class SoakReport:
    """The figures `python -m bench soak` prints and saves."""

    options: SoakOptions
    conversations: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    # The machine's 1-minute load average at each conversation's end: failures on a
    # starved machine read differently from failures on a quiet one.
    load_at_failure: list[float] = field(default_factory=list)
    load_at_success: list[float] = field(default_factory=list)
    warm_pool: int = 0
    before: ServerFootprint | None = None
    after: ServerFootprint | None = None
    processes_left: list[str] = field(default_factory=list)
    rooms_left: int = -1
    sessions_left: int = -1
    elapsed_s: float = 0.0
    cut_short: bool = False

    @property
    def leaked_processes(self) -> int:
        """Processes left beyond the warm pool: bots anywhere, or any child of the server."""
        return max(0, len(self.processes_left) - self.warm_pool)

    @property
    def fd_growth(self) -> int:
        """Open descriptors gained since the baseline."""
        assert self.before and self.after
        return self.after.open_fds - self.before.open_fds

    @property
    def rss_growth_pct(self) -> float:
        """Resident memory gained since the baseline, in percent."""
        assert self.before and self.after
        return 100.0 * (self.after.rss_kib - self.before.rss_kib) / self.before.rss_kib

    def goals_met(self) -> dict[str, bool]:
        """Each goal, and whether this run met it."""
        return {
            "every conversation held": not self.failures and not self.cut_short,
            "0 leaked processes": self.leaked_processes == 0,
            "0 fd growth": self.fd_growth <= 0,
            f"RSS growth < {RSS_GROWTH_GOAL_PCT:.0f} %": self.rss_growth_pct < RSS_GROWTH_GOAL_PCT,
            "0 rooms left open": self.rooms_left == 0,
            "0 sessions left": self.sessions_left == 0,
        }

    def lines(self) -> list[str]:
        """The figures, for people."""
        assert self.before and self.after
        o = self.options
        p50, p95 = (percentile(self.seconds, q) if self.seconds else 0.0 for q in (50, 95))
        load = (
            f"machine load (1 min) at successes: p50 {_p50(self.load_at_success):.1f}; "
            f"at failures: p50 {_p50(self.load_at_failure):.1f}"
        )
        return [
            f"soak: {o.sequential} sequential + {o.parallel_total} at {o.parallel} at a time "
            f"in {self.elapsed_s:.0f} s; {len(self.failures)} of {self.conversations} failed"
            + (" (cut short by --max-minutes)" if self.cut_short else ""),
            load,
            f"conversation (join to reply heard): p50 {p50:.2f} s, p95 {p95:.2f} s",
            f"leaked processes: {self.leaked_processes} (goal 0); left running: "
            + (", ".join(self.processes_left) or "none"),
            f"server open fds: {self.before.open_fds} -> {self.after.open_fds}, "
            f"growth {self.fd_growth} (goal 0)",
            f"server RSS: {self.before.rss_kib / 1024:.1f} -> {self.after.rss_kib / 1024:.1f} MiB,"
            f" growth {self.rss_growth_pct:.1f} % (goal < {RSS_GROWTH_GOAL_PCT:.0f} %)",
            f"livekit-server rooms left open: {self.rooms_left} (goal 0)",
            f"/sessions left over: {self.sessions_left} (goal 0)",
        ]

    def to_json(self) -> dict[str, Any]:
        """Everything, with the goals, for bench/results/."""
        return {
            **asdict(self),
            "leaked_processes": self.leaked_processes,
            "fd_growth": self.fd_growth,
            "rss_growth_pct": round(self.rss_growth_pct, 2),
            "goals_met": self.goals_met(),
        }


def _p50(values: list[float]) -> float:
    return percentile(values, 50) if values else 0.0


def footprint(pid: int) -> ServerFootprint:
    """A process's open fds, resident memory and child processes (zombies included)."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return ServerFootprint(
        open_fds=len(list(Path(f"/proc/{pid}/fd").iterdir())),
        rss_kib=rss,
        children=[p for p, parent in _parents().items() if parent == pid],
    )


def _parents() -> dict[int, int]:
    """{pid: parent pid} of every process."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                # The command name may hold spaces or parentheses: split after the last ')'.
                after_name = (entry / "stat").read_text().rsplit(")", 1)[1]
                parents[int(entry.name)] = int(after_name.split()[1])
    return parents


def is_fork_server(pid: int) -> bool:
    """Whether `pid` is a bot fork server (its forks share its command line, not its name)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == FORK_SERVER_NAME
    except OSError:
        return False


def bots_of(livekit_url: str) -> list[int]:
    """Every live `python -m bot` bot serving this LiveKit, whoever its parent is now."""
    marker = f"LIVEKIT_URL={livekit_url}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
            if argv[1:3] == [b"-m", b"bot"] and marker in environ:
                found.append(int(entry.name))
    return [pid for pid in found if not is_fork_server(pid)]


def describe(pid: int) -> str:
    """`pid:command` for a report line."""
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        return f"{pid} ({state}) {command}".strip()
    return str(pid)


async def open_rooms(stack: Stack) -> int:
    """How many rooms livekit-server has open."""
    url = stack.livekit.url.replace("ws://", "http://")
    async with api.LiveKitAPI(
        url, SECRETS["livekit_api_key"], SECRETS["livekit_api_secret"]
    ) as livekit:
        return len((await livekit.room.list_rooms(api.ListRoomsRequest())).rooms)


async def wait_until(condition: Callable[[], Awaitable[bool]], timeout_s: float) -> None:
    """Poll `condition` until it holds or the time is up; the caller reports what is left."""
    deadline = time.monotonic() + timeout_s
    while not await condition() and time.monotonic() < deadline:
        await asyncio.sleep(POLL_S)


class Soak:
    """Holds the conversations on one stack and keeps the score."""

    def __init__(self, stack: Stack, question: bytes, report: SoakReport, deadline: float) -> None:
        self._stack = stack
        self._question = question
        self._report = report
        self._deadline = deadline

    async def one(self) -> bool:
        """One conversation, unless time is up (False); a failure is recorded, not raised."""
        if time.monotonic() > self._deadline:
            self._report.cut_short = True
            return False
        try:
            talk = await converse(
                self._stack.server, self._question, greeting=GREETING, reply=REPLY
            )
        except ConversationFailed as e:
            self._report.failures.append(str(e))
            self._report.load_at_failure.append(os.getloadavg()[0])
        else:
            self._report.seconds.append(talk.seconds)
            self._report.load_at_success.append(os.getloadavg()[0])
        self._report.conversations += 1
        return True

    async def many(self, at_once: int, total: int) -> None:
        """`total` conversations, `at_once` at a time."""
        remaining = total

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                if not await self.one():
                    return

        await asyncio.gather(*(worker() for _ in range(at_once)))

    async def settle(self) -> None:
        """Wait until no session is left and only the warm pool is running."""
        server, url = self._stack.server, self._stack.livekit.url
        pool = self._report.warm_pool

        async def quiet() -> bool:
            return not await server.sessions() and len(bots_of(url)) == pool

        await wait_until(quiet, SETTLE_TIMEOUT_S)


async def run_soak(options: SoakOptions, folder: Path) -> SoakReport:
    """Run the whole soak in `folder` (logs, speech).

    No conversation starts after `options.max_minutes`; each step of one is bounded, and
    so is the settling before the measurements.
    """
    report = SoakReport(options=options, warm_pool=1)
    question = Speaker(folder)(QUESTION)
    stacks = start_stack(
        folder,
        log_level="INFO",
        bot_warm_pool=report.warm_pool,
        max_concurrent_sessions=2 * options.parallel + 2,
        rate_limit_per_minute=100_000,
    )
    async with contextlib.aclosing(stacks):
        async for stack in stacks:
            await _soak(stack, question, report)
    return report


async def _soak(stack: Stack, question: bytes, report: SoakReport) -> None:
    options, server = report.options, stack.server
    stack.transcriber.script[:] = ["what time is it"]
    stack.reply_queue[:] = [REPLY]
    deadline = time.monotonic() + options.max_minutes * 60
    soak = Soak(stack, question, SoakReport(options=options), deadline)  # warm-up: not scored
    for _ in range(options.warmup):
        await soak.one()
    soak = Soak(stack, question, report, deadline)
    await soak.settle()
    await asyncio.sleep(QUIET_S)
    report.before = footprint(server.process.pid)
    started = time.monotonic()
    for _ in range(options.sequential):
        if not await soak.one():
            break
    await soak.many(options.parallel, options.parallel_total)
    report.elapsed_s = time.monotonic() - started
    await soak.settle()

    async def no_rooms() -> bool:
        return await open_rooms(stack) == 0

    await wait_until(no_rooms, SETTLE_TIMEOUT_S)
    report.rooms_left = await open_rooms(stack)
    report.sessions_left = len(await server.sessions())
    await asyncio.sleep(QUIET_S)
    report.after = footprint(server.process.pid)
    children = [pid for pid in report.after.children if not is_fork_server(pid)]
    left = set(bots_of(stack.livekit.url)) | set(children)
    report.processes_left = [describe(pid) for pid in sorted(left)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The soak's options."""
    defaults = SoakOptions()
    parser.add_argument("--sequential", type=int, default=defaults.sequential)
    parser.add_argument("--parallel", type=int, default=defaults.parallel, help="at a time")
    parser.add_argument(
        "--parallel-total",
        type=int,
        default=defaults.parallel_total,
        help="conversations in the parallel phase",
    )
    parser.add_argument("--warmup", type=int, default=defaults.warmup)
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=defaults.max_minutes,
        help="start no conversation after this; settling and measuring follow",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON report")


def run(args: argparse.Namespace) -> int:
    """Run the soak, print the figures, save them; 1 when a goal is missed."""
    options = SoakOptions(
        sequential=args.sequential,
        parallel=args.parallel,
        parallel_total=args.parallel_total,
        warmup=args.warmup,
        max_minutes=args.max_minutes,
    )
    with tempfile.TemporaryDirectory(prefix="soak-") as folder:
        report = asyncio.run(run_soak(options, Path(folder)))
    for line in report.lines():
        print(line)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = args.out / f"soak-{stamp}.json"
    path.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    print(f"written to {path}")
    missed = [goal for goal, met in report.goals_met().items() if not met]
    if missed:
        print("missed: " + "; ".join(missed))
    for failure in sorted(set(report.failures)):
        print(f"failure x{report.failures.count(failure)}: {failure}")
    return 1 if missed else 0
