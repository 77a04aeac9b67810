"""`python -m bench compare`: our bot and LiveKit Agents side by side, in one run.

One real livekit-server and one set of engine stand-ins serve four systems: ours with
realtime STT (our default) and with HTTP STT (one upload per utterance, like the peer),
and a LiveKit Agents 1.8.9 agent (`bench/peers/`) in its default configuration and
with its turn handling matched to ours. Scenarios: (a) engines answering at once (what
framework and transport add), (b) engines at 150/150/150 ms, (c) barge-in, (d)
conversations at once, (e) a burst of room requests. Systems alternate turn by turn.

Writes `bench/results/<date>-compare.json`, `.md` (the table) and PNG plots. Exits 1
when any figure is missing (`--quick`, one turn per scenario, runs in the test suite).
On a shared machine every figure is noisy: compare within one run, not across runs.
"""

import argparse
import asyncio
import datetime
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.compare.report import missing, save, table
from bench.compare.scenarios import Results, Speech, burst, concurrency, latency_and_barge_in
from bench.compare.systems import running
from bench.listener.run import QUESTION, REPLY, TRANSCRIPT, EngineDelays
from bench.speech import speech

RESULTS = Path(__file__).resolve().parent.parent / "results"
INTERRUPTION = "Wait, stop, tell me about Berlin instead."
LONG_REPLY = " ".join(["This reply goes on for a long while so that it can be interrupted."] * 4)
SCENARIOS = {
    "(a) engines at 0 ms": EngineDelays(0, 0, 200, 0),
    "(b) engines at 150/150/150 ms": EngineDelays(150, 150, 200, 150),
}


def _levels(text: str) -> list[int]:
    return sorted({int(n) for n in text.split(",") if n.strip()})


SUMMARY = "our bot and LiveKit Agents side by side: latency, barge-in, concurrency, burst"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's options."""
    parser.add_argument("--quick", action="store_true", help="1 turn, concurrency and burst 1,2")
    parser.add_argument("--turns", type=int, default=9, help="turns per latency scenario")
    parser.add_argument("--concurrency", type=_levels, default=_levels("1,2,5,10,15,20,30"))
    parser.add_argument("--conversation-turns", type=int, default=3, help="questions per room")
    parser.add_argument("--burst", type=_levels, default=_levels("1,5,10"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--date", default=datetime.date.today().isoformat())


async def measure(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Start everything, run every scenario, stop everything."""
    said = Speech(speech(QUESTION), speech(INTERRUPTION))
    results = Results()
    max_rooms = max([*args.concurrency, *args.burst])
    async with running(folder, max_rooms) as bench:
        bench.stack.transcriber.script[:] = [TRANSCRIPT]
        bench.stack.reply_queue[:] = [REPLY]
        await latency_and_barge_in(bench, said, args.turns, SCENARIOS, LONG_REPLY, results)
        SCENARIOS["(b) engines at 150/150/150 ms"].apply(bench.stack.engines)
        await concurrency(bench, said, args.concurrency, args.conversation_turns, results)
        await burst(bench, args.burst, results)
    return {
        "meta": {
            "date": args.date,
            "quick": args.quick,
            "turns": args.turns,
            "conversation_turns": args.conversation_turns,
            "concurrency_levels": args.concurrency,
            "burst_levels": args.burst,
            "scenarios": {name: asdict(delays) for name, delays in SCENARIOS.items()},
            "note": "shared 2-core machine: figures are noisy",
        },
        **asdict(results),
    }


def run(args: argparse.Namespace) -> int:
    """Run, print the table, write the files; 1 if any figure is missing."""
    if args.quick:
        args.turns, args.concurrency, args.conversation_turns, args.burst = 1, [1, 2], 1, [1, 2]
    with tempfile.TemporaryDirectory(prefix="compare-bench-") as folder:
        results = asyncio.run(measure(args, Path(folder)))
    results["meta"]["commit"] = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    json_path, md_path, pngs = save(results, args.out, args.date)
    print(table(results))
    print(f"wrote {json_path}, {md_path}, " + ", ".join(str(p) for p in pngs))
    gaps = missing(results)
    if gaps:
        print("missing figures:\n  " + "\n  ".join(gaps), file=sys.stderr)
        return 1
    return 0
