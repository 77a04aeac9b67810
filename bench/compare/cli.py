"""`python -m bench compare`: our bot and LiveKit Agents side by side, in one run.

One real livekit-server and one set of engine stand-ins serve the systems
(`bench.compare.systems`): ours with realtime STT (our default) and with HTTP STT (one
upload per utterance, like the peer), ours with the rooms in threads of one process
(cost scenarios only), and a LiveKit Agents 1.8.9 agent (`bench/peers/`) in its default
configuration and with its turn handling matched to ours. Scenarios: (a) engines
answering at once (what framework and transport add), (b) engines at 150/150/150 ms,
(c) barge-in, (d) conversations at once, (e) a burst of room requests, and turn-taking
over a reply (a cough, "mm-hm", "Stop, what time is it?", a pause mid-thought;
`bench.compare.turn_taking`) on ours and both peer configurations. Systems alternate
turn by turn. `--scenarios` and `--systems` pick some of them.

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
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.compare.report import ALL, missing, save, table
from bench.compare.scenarios import Results, Speech, burst, concurrency, latency_and_barge_in
from bench.compare.systems import (
    COST_SYSTEMS,
    OURS_REALTIME,
    THEIRS_DEFAULT,
    THEIRS_MATCHED,
    running,
)
from bench.compare.turn_taking import turn_taking
from bench.listener.run import QUESTION, REPLY, TRANSCRIPT, EngineDelays
from bench.speech import speech
from bench.stats import counts

RESULTS = Path(__file__).resolve().parent.parent / "results"
INTERRUPTION = "Wait, stop, tell me about Berlin instead."
LONG_REPLY = " ".join(["This reply goes on for a long while so that it can be interrupted."] * 4)
SCENARIOS = {
    "(a) engines at 0 ms": EngineDelays(0, 0, 200, 0),
    "(b) engines at 150/150/150 ms": EngineDelays(150, 150, 200, 150),
}


# Turn-taking runs on our default (realtime STT) and both peer configurations. `--quick`
# runs one round on the matched peer only (~30 s a system): the suite asserts our bot's
# turn-taking in tests/test_e2e_turn_taking.py, and the peer's options are tested nowhere else.
TURN_TAKING_SYSTEMS = [OURS_REALTIME, THEIRS_MATCHED, THEIRS_DEFAULT]
QUICK_TURN_TAKING_SYSTEMS = [THEIRS_MATCHED]


def _names(allowed: tuple[str, ...]) -> Callable[[str], list[str]]:
    """Parses a comma list of some of `allowed`."""

    def parse(text: str) -> list[str]:
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = set(names) - set(allowed)
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {sorted(unknown)}: pick from {allowed}")
        return names

    return parse


SUMMARY = (
    "our bot and LiveKit Agents side by side: latency, barge-in, concurrency, burst, turn-taking"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's options."""
    parser.add_argument("--quick", action="store_true", help="1 turn, concurrency and burst 1,2")
    parser.add_argument("--turns", type=int, default=9, help="turns per latency scenario")
    parser.add_argument("--concurrency", type=counts, default=counts("1,2,5,10,15,20,30"))
    parser.add_argument("--conversation-turns", type=int, default=3, help="questions per room")
    parser.add_argument(
        "--level-turns",
        type=int,
        default=20,
        help="fewest questions per concurrency level in all (rooms ask more to reach it)",
    )
    parser.add_argument(
        "--stagger-s",
        type=float,
        default=0.0,
        help="spread the rooms' first questions over this long (0: all at once, the worst case)",
    )
    parser.add_argument("--burst", type=counts, default=counts("1,5,10"))
    parser.add_argument("--burst-repeat", type=int, default=1, help="bursts per size, pooled")
    parser.add_argument(
        "--scenarios", type=_names(ALL), default=list(ALL), help=f"some of {','.join(ALL)}"
    )
    parser.add_argument(
        "--systems",
        type=_names(COST_SYSTEMS),
        default=list(COST_SYSTEMS),
        help=f"comma list, some of: {', '.join(COST_SYSTEMS)}",
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds per turn-taking scenario")
    parser.add_argument(
        "--settle-s", type=float, default=5, help="between levels: bots leave, warm pools refill"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--date", default=datetime.date.today().isoformat())


async def measure(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Start everything, run every scenario, stop everything."""
    said = Speech(speech(QUESTION), speech(INTERRUPTION))
    results = Results()
    max_rooms = max([*args.concurrency, *args.burst])
    ran = args.scenarios
    turn_taking_s = None
    latency = SCENARIOS if "latency" in ran else {}
    async with running(folder, max_rooms, args.systems) as bench:
        bench.stack.transcriber.script[:] = [TRANSCRIPT]
        bench.stack.reply_queue[:] = [REPLY]
        if latency or "barge-in" in ran:
            await latency_and_barge_in(
                bench, said, args.turns, latency, LONG_REPLY, results, "barge-in" in ran
            )
        SCENARIOS["(b) engines at 150/150/150 ms"].apply(bench.stack.engines)
        if "concurrency" in ran:
            await concurrency(
                bench,
                said,
                args.concurrency,
                args.conversation_turns,
                results,
                args.settle_s,
                args.level_turns,
                args.stagger_s,
            )
        if "burst" in ran:
            await burst(bench, args.burst, results, args.settle_s, args.burst_repeat)
        if "turn-taking" in ran:
            by_name = {system.name: system for system in bench.systems}
            systems = [by_name[name] for name in args.turn_taking_systems]
            started = time.monotonic()
            await turn_taking(bench, systems, {OURS_REALTIME}, args.rounds, results)
            turn_taking_s = round(time.monotonic() - started, 1)
    return {
        "meta": {
            "date": args.date,
            "quick": args.quick,
            "turns": args.turns,
            "conversation_turns": args.conversation_turns,
            "level_turns": args.level_turns,
            "stagger_s": args.stagger_s,
            "concurrency_levels": args.concurrency,
            "burst_levels": args.burst,
            "burst_repeat": args.burst_repeat,
            "scenarios_run": ran,
            "systems_run": args.systems,
            "turn_taking_rounds": args.rounds,
            "turn_taking_systems": args.turn_taking_systems if "turn-taking" in ran else [],
            "turn_taking_s": turn_taking_s,
            "scenarios": {name: asdict(delays) for name, delays in SCENARIOS.items()},
            "note": "shared 2-core machine: figures are noisy",
        },
        **asdict(results),
    }


def run(args: argparse.Namespace) -> int:
    """Run, print the table, write the files; 1 if any figure is missing."""
    args.turn_taking_systems = TURN_TAKING_SYSTEMS
    if args.quick:
        args.turns, args.concurrency, args.conversation_turns, args.burst = 1, [1, 2], 1, [1, 2]
        args.level_turns = 1
        args.rounds, args.turn_taking_systems = 1, QUICK_TURN_TAKING_SYSTEMS
        # Its figures only have to exist: a burst may find a warm pool still refilling.
        args.settle_s = 1
    args.turn_taking_systems = [n for n in args.turn_taking_systems if n in args.systems]
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
