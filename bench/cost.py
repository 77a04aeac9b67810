"""`python -m bench cost`: what one bot costs in a real conversation, phase by phase.

The real stack (livekit-server, engine stand-ins, the session server spawning real
bots) serves one listener. The bot's CPU (per thread, from /proc) and RSS are read over
three phases: idle (the listener in the room, nobody talking), the user talking (speech
the STT stand-in transcribes as nothing, so the bot never answers), and the bot talking
(a long reply heard through). A standby bot's idle cost is read too. With `--profile`,
py-spy samples the bot over each phase (`--native` adds C frames) into `--out`.
`--burst N` then asks for N rooms at once, once the warm pool (`--bot bot_warm_pool=K`)
is full, and times each bot's first audio as its listener hears it.
"""

import argparse
import asyncio
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from bench.compare.measure import memory_mb, rss_mb, stat_cpu_seconds, tasks_of
from bench.compare.scenarios import burst_once
from bench.compare.systems import System, _connect
from bench.listener.listener import Listener
from bench.listener.run import QUESTION, EngineDelays
from bench.speech import speech
from tests.conftest import ADMIN_TOKEN
from tests.stack import GREETING, Stack, start_stack

SUMMARY = "one bot's CPU and RSS by phase (idle, user talking, bot talking), optional py-spy"
RESULTS = Path(__file__).resolve().parent / "results"
STANDING_BY = "Standing by for a room"
LONG_REPLY = " ".join(["This reply goes on for a long while so that it keeps talking."] * 6)


def thread_name(pid: int, task: Path) -> str:
    """A thread's name (`main`: Python's own) from its /proc task directory."""
    return "main" if task.name == str(pid) else (task / "comm").read_text().strip()


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds so far of each thread of `pid`, summed by thread name."""
    out: dict[str, float] = defaultdict(float)
    for task in tasks_of(pid):
        try:
            out[thread_name(pid, task)] += stat_cpu_seconds(task / "stat")
        except OSError:
            continue
    return out


@dataclass
class Phase:
    """What the bot used over one phase."""

    name: str
    seconds: float
    cpu_pct: float
    rss_mb: float
    # RSS, PSS, USS and anonymous memory at the phase's end, MB.
    memory: dict[str, float]
    # % of a core by thread name, largest first.
    threads: dict[str, float]


class PhaseMeter:
    """Reads a process's per-thread CPU at a phase's start and end."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._start: dict[str, float] = {}
        self._at = 0.0

    def start(self) -> None:
        """Begin the phase."""
        self._start, self._at = thread_cpu(self.pid), time.monotonic()

    def stop(self, name: str) -> Phase:
        """End the phase."""
        now, wall = thread_cpu(self.pid), time.monotonic() - self._at
        used = {k: v - self._start.get(k, 0.0) for k, v in now.items()}
        threads = {
            k: round(100 * v / wall, 2)
            for k, v in sorted(used.items(), key=lambda kv: -kv[1])
            if v > 0
        }
        cpu = round(sum(threads.values()), 2)
        return Phase(name, round(wall, 1), cpu, rss_mb(self.pid), memory_mb(self.pid), threads)


class Profiler:
    """py-spy over one phase (a no-op without `--profile`)."""

    def __init__(self, folder: Path | None, native: bool) -> None:
        self.folder = folder
        self.native = native
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, pid: int, name: str) -> None:
        """Sample `pid` into `<name>.txt` until `stop`."""
        if self.folder is None:
            return
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        command = [spy, "record", "--pid", str(pid), "--rate", "100", "--format", "raw"]
        command += ["--threads", "--idle", "-o", str(self.folder / f"{name}.txt")]
        command += ["--native"] if self.native else []
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self) -> None:
        """Stop sampling; py-spy writes its file."""
        if self._process is None:
            return
        self._process.send_signal(signal.SIGINT)
        try:
            self._process.wait(15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None


async def bot_pids(server_url: str) -> list[int]:
    """The pids of the bots serving rooms."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server_url}/sessions", headers=headers) as response:
            response.raise_for_status()
            return [s["pid"] for s in await response.json() if s["pid"]]


def children(pid: int) -> list[int]:
    """Direct children of `pid`."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


async def _phases(
    stack: Stack, listener: Listener, profiler: Profiler, seconds: float
) -> list[Phase]:
    """Idle, the user talking, the bot talking: what the room's bot used in each."""
    question = speech(QUESTION)
    (pid,) = await bot_pids(stack.server.url)
    standby = [p for p in children(stack.server.process.pid) if p != pid]
    await asyncio.sleep(2)  # the standby finishes loading
    bot, idle_standby = PhaseMeter(pid), PhaseMeter(standby[0] if standby else 0)
    phases: list[Phase] = []

    async def phase(name: str, body: Awaitable[None]) -> None:
        bot.start()
        idle_standby.start()
        profiler.start(pid, name)
        try:
            await body
        finally:
            profiler.stop()
            phases.append(bot.stop(name))
            if name == "idle" and standby:
                phases.append(idle_standby.stop("standby"))

    async def user_talks() -> None:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            await listener.say(question)

    async def bot_talks() -> None:
        while not listener.quiet_since(0.3):
            await asyncio.sleep(0.02)

    await phase("idle", asyncio.sleep(seconds))
    stack.transcriber.script[:] = [""]  # heard as nothing: the bot stays quiet
    await phase("user_talking", user_talks())
    await asyncio.sleep(2)
    stack.transcriber.script[:] = ["hello"]
    stack.reply_queue[:] = [LONG_REPLY]
    said = await listener.say(question)
    while listener.first_sound(said.speech_end) is None:
        await asyncio.sleep(0.01)
    await phase("bot_talking", bot_talks())
    return phases


async def _loaded(stack: Stack) -> int:
    """Standby bots that have loaded and still wait for a room.

    A standby's lines carry no room until it has one, so its "standing by" is room-less.
    """
    loaded = sum(
        1 for r in stack.server.records() if r["message"] == STANDING_BY and not r.get("room")
    )
    return loaded - int(
        await stack.server.metric("voice_agent_sessions_started_total", pool="warm")
    )


async def burst(stack: Stack, count: int, pool: int) -> list[float | None]:
    """`count` rooms asked for at once, once the warm pool is loaded: ms to each first audio."""
    deadline = time.monotonic() + 120
    while (
        await stack.server.metric("voice_agent_warm_pool_bots") < pool
        or await _loaded(stack) < pool
    ):
        if time.monotonic() > deadline:
            raise TimeoutError("the warm pool did not load within 120 s")
        await asyncio.sleep(0.5)
    ours = System("ours", _connect(stack.server), stack.server.process.pid)
    return [room and round(room.first_audio_ms) for room in await burst_once(ours, count)]


async def measure(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Start the stack, run the phases (and a burst), return the figures."""
    settings = dict(args.bot)
    pool = int(settings.get("bot_warm_pool", 1))
    overrides = {
        "log_level": "INFO",
        "bot_warm_pool": pool,
        "max_concurrent_sessions": max(4, args.burst + pool + 1),
        **settings,
    }
    profiler = Profiler(args.out / "profiles" if args.profile else None, args.native)
    if profiler.folder:
        profiler.folder.mkdir(parents=True, exist_ok=True)
    phases: list[Phase] = []
    first_audio: list[float | None] = []
    async for stack in start_stack(folder, **overrides):
        EngineDelays().apply(stack.engines)
        stack.transcriber.script[:] = ["hello"]
        stack.reply_queue[:] = ["Okay."]
        if args.seconds:
            listener = await Listener.join(stack.server.url, GREETING)
            try:
                phases = await _phases(stack, listener, profiler, args.seconds)
            finally:
                await listener.leave()
            await asyncio.sleep(3)  # the bot leaves
        if args.burst:
            first_audio = await burst(stack, args.burst, pool)
    return {
        "meta": {
            "date": args.date,
            "load_average": os.getloadavg(),
            "bot": dict(args.bot),
            "cores": os.cpu_count(),
        },
        "phases": [asdict(p) for p in phases],
        "burst_first_audio_ms": first_audio,
    }


def _setting(text: str) -> tuple[str, str]:
    key, _, value = text.partition("=")
    return key.strip().lower(), value.strip()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's options."""
    parser.add_argument("--seconds", type=float, default=20, help="each phase (0: none)")
    parser.add_argument("--burst", type=int, default=0, help="then this many rooms at once")
    parser.add_argument("--profile", action="store_true", help="py-spy each phase")
    parser.add_argument("--native", action="store_true", help="py-spy with C frames")
    parser.add_argument(
        "--bot", type=_setting, action="append", default=[], help="bot setting KEY=VALUE"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--date", default=datetime.date.today().isoformat())


def run(args: argparse.Namespace) -> int:
    """Run once, print the phases, write `<date>-cost.json`."""
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="cost-bench-") as folder:
        results = asyncio.run(measure(args, Path(folder)))
    results["meta"]["load_before"] = load
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{args.date}-cost.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"load average before {load:.2f}, after {results['meta']['load_average'][0]:.2f}")
    for p in results["phases"]:
        top = ", ".join(f"{k} {v:.1f}" for k, v in list(p["threads"].items())[:6])
        memory = " ".join(f"{k} {v:.0f}" for k, v in p["memory"].items())
        print(f"{p['name']:>13}: {p['cpu_pct']:5.1f} % of a core, MB: {memory}  [{top}]")
    heard = [ms for ms in results["burst_first_audio_ms"] if ms is not None]
    if results["burst_first_audio_ms"]:
        print(
            f"burst of {len(results['burst_first_audio_ms'])}: first audio (ms) "
            f"p50 {np.percentile(heard, 50):.0f}, p95 {np.percentile(heard, 95):.0f}, "
            f"max {max(heard):.0f}; failed {len(results['burst_first_audio_ms']) - len(heard)}"
        )
    print(f"wrote {path}")
    return 0
