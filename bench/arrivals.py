"""`python -m bench arrivals`: callers arriving one after another, with and without MAX_CPU_BUSY.

The real stack (livekit-server, engine stand-ins at 150/150/150 ms, the session server
spawning real bots with realtime STT) takes a caller every `--every-s`; each asks
`--questions` questions, one after the other, then leaves. Each `--max-cpu-busy` value
runs the same arrivals on a fresh stack: the callers served, those refused (503), and
voice to voice at the listener over all turns, for the first caller alone, and over time.
Past what the machine carries, without the limit every conversation slows; with it the
late callers are told the agents are busy and the others keep their pace.
"""

import argparse
import asyncio
import datetime
import json
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp

from bench.compare.cli import SCENARIOS
from bench.compare.scenarios import join, turn
from bench.compare.systems import System, _connect
from bench.listener.run import QUESTION, REPLY, TRANSCRIPT
from bench.speech import speech
from bench.stats import percentile
from tests.stack import start_stack

SUMMARY = "callers arriving one by one, with and without MAX_CPU_BUSY: who is served, how fast"
RESULTS = Path(__file__).resolve().parent / "results"
BUCKET_S = 20


@dataclass
class Arrivals:
    """One run: who was served, who refused, and every turn (s since start, caller, ms)."""

    max_cpu_busy: float
    served: list[int] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)
    turns: list[tuple[float, int, float | None]] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        """p50 / p95 over all turns, the first caller's, and per `BUCKET_S` of the run."""
        heard = [ms for _, _, ms in self.turns if ms is not None]
        first = [ms for _, caller, ms in self.turns if ms is not None and caller == 0]
        buckets: dict[int, list[float]] = {}
        for at, _, ms in self.turns:
            if ms is not None:
                buckets.setdefault(int(at // BUCKET_S) * BUCKET_S, []).append(ms)
        return {
            "max_cpu_busy": self.max_cpu_busy,
            "served": len(self.served),
            "refused": self.refused,
            "failed_turns": len(self.turns) - len(heard),
            "p50_p95_ms": _p50_p95(heard),
            "first_caller_p50_p95_ms": _p50_p95(first),
            "p50_by_time": {at: round(percentile(v, 50)) for at, v in buckets.items()},
        }


def _p50_p95(values: list[float]) -> list[float] | None:
    return [round(percentile(values, q)) for q in (50, 95)] if values else None


async def arrivals(max_cpu_busy: float, callers: int, every_s: float, questions: int) -> Arrivals:
    """Start a stack with `max_cpu_busy`, let the callers arrive, collect every turn."""
    run = Arrivals(max_cpu_busy)
    with tempfile.TemporaryDirectory(prefix="arrivals-bench-") as folder:
        async for stack in start_stack(
            Path(folder),
            None,
            log_level="INFO",
            bot_warm_pool=2,
            max_concurrent_sessions=callers + 2,
            voxtral_mode="realtime",
            max_cpu_busy=max_cpu_busy,
            cpu_busy_window_s=5,
        ):
            stack.transcriber.script[:] = [TRANSCRIPT]
            stack.reply_queue[:] = [REPLY]
            SCENARIOS["(b) engines at 150/150/150 ms"].apply(stack.engines)
            system = System("ours", _connect(stack.server), stack.server.process.pid)
            await _callers(system, run, callers, every_s, questions)
    return run


async def _callers(
    system: System, run: Arrivals, callers: int, every_s: float, questions: int
) -> None:
    """Caller i arrives `i * every_s` in, asks its questions and leaves; 503s are refusals."""
    question = speech(QUESTION)
    started = time.monotonic()

    async def caller(i: int) -> None:
        await asyncio.sleep(i * every_s)
        try:
            listener = (await join(system)).listener
        except aiohttp.ClientResponseError as e:
            if e.status != 503:
                raise
            run.refused.append(i)
            return
        run.served.append(i)
        for _ in range(questions):
            ms = await turn(listener, question)
            run.turns.append((time.monotonic() - started, i, ms))
        await listener.leave()

    await asyncio.gather(*(caller(i) for i in range(callers)))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's options."""
    parser.add_argument("--callers", type=int, default=10)
    parser.add_argument("--every-s", type=float, default=6, help="between two callers")
    parser.add_argument("--questions", type=int, default=10, help="asked by each caller")
    parser.add_argument(
        "--max-cpu-busy",
        type=lambda text: [float(v) for v in text.split(",")],
        default=[0.0, 0.85],
        help="comma list of MAX_CPU_BUSY values, one run each (0: no limit)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--date", default=datetime.date.today().isoformat())


def run(args: argparse.Namespace) -> int:
    """Run each limit in turn, print and write `<date>-arrivals.json`."""
    runs = [
        asyncio.run(arrivals(limit, args.callers, args.every_s, args.questions))
        for limit in args.max_cpu_busy
    ]
    summaries = [one.summary() for one in runs]
    for summary in summaries:
        print(json.dumps(summary))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{args.date}-arrivals.json"
    options = {k: v for k, v in vars(args).items() if k not in ("out", "command")}
    results = {
        "options": options,
        "runs": [
            {"summary": summary, **asdict(one)}
            for summary, one in zip(summaries, runs, strict=True)
        ],
    }
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {path}")
    return 0
