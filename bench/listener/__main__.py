"""`python -m bench.listener`: voice to voice as a listener in the room hears it.

Starts a real livekit-server, the session server (which spawns a real bot) and the
engine stand-ins with realistic delays, then a LiveKit participant speaks an espeak-ng
question in real time and listens for the reply, turn after turn. Per turn it reports
when each hop happened after the listener's last voiced audio, all on the machine's one
monotonic clock, then p50/p95 per hop; it writes a JSON file (with the commit and every
setting, so runs compare) and a PNG waterfall under `bench/results/`.

Exits 1 when any turn lacks a hop (the `--quick` run in the test suite relies on it).

One build measures both sides of the latency work: `--set VAD_PAUSE_SECS=5 --set
PREEMPTIVE_GENERATION=false --set CHUNK_FIRST_AT_CLAUSE=false` turns off the early STT
commit, preemptive generation and the clause-ended first chunk (`--label before`).

`--connect-ms` charges each new connection to a stand-in a handshake's round trips. The
vLLM and Chatterbox stand-ins close a connection idle for 5 s, as their servers do, so
most turns would open one: `--set CHATTERBOX_IDLE_CLOSE_S=0` stops the bot opening it
ahead (`--label before`).

`--utterances mid-thought` compares the turn-stop strategies on sentences that pause
mid-thought (`bench/listener/mid_thought.py`). `--barge-in` measures how fast an
interrupted reply is gone at the listener (`bench/listener/barge_in.py`); it exits 1
when any turn lacks a figure.
"""

import argparse
import asyncio
import dataclasses
import datetime
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.listener import barge_in, mid_thought
from bench.listener.hops import missing
from bench.listener.report import build, git_commit, save, table
from bench.listener.run import BenchOptions, EngineDelays, run
from bot.process_exit import exit_now

RESULTS = Path(__file__).resolve().parent.parent / "results"


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError("expected NAME=VALUE")
    return name.lower(), value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.listener", description=__doc__)
    parser.add_argument("--turns", type=int, default=20, help="turns to measure (default 20)")
    parser.add_argument("--quick", action="store_true", help="3 turns, for the test suite")
    parser.add_argument(
        "--barge-in", action="store_true", help="time interruptions instead (--quick: 2 turns)"
    )
    parser.add_argument(
        "--utterances",
        choices=("questions", "mid-thought"),
        default="questions",
        help="mid-thought: smart_turn vs speech_timeout on sentences with a pause (--quick: 2)",
    )
    parser.add_argument("--stt-delay-ms", type=float, default=150, help="final transcript delay")
    parser.add_argument("--llm-first-token-ms", type=float, default=150)
    parser.add_argument("--llm-tokens-per-s", type=float, default=200)
    parser.add_argument("--tts-first-audio-ms", type=float, default=150)
    parser.add_argument(
        "--connect-ms",
        type=float,
        default=0,
        help="a new engine connection's handshake (TCP and TLS round trips to a remote engine)",
    )
    parser.add_argument("--vad-stop-secs", type=float, default=0.2)
    parser.add_argument("--stt-mode", choices=("realtime", "segmented"), default="realtime")
    parser.add_argument(
        "--set",
        type=_setting,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any other bot setting, e.g. --set PREEMPTIVE_GENERATION=false (repeatable)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for JSON and PNG")
    parser.add_argument("--label", default="run", help="file name part, e.g. before / after")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the bench, print the table, write the files; 1 if any hop is missing."""
    args = parse_args(argv)
    quick_turns = 2 if args.barge_in else 3
    options = BenchOptions(
        turns=quick_turns if args.quick else args.turns,
        delays=EngineDelays(
            stt_final_ms=args.stt_delay_ms,
            llm_first_token_ms=args.llm_first_token_ms,
            llm_tokens_per_s=args.llm_tokens_per_s,
            tts_first_audio_ms=args.tts_first_audio_ms,
            connect_ms=args.connect_ms,
        ),
        bot={"vad_stop_secs": args.vad_stop_secs, "voxtral_mode": args.stt_mode, **dict(args.set)},
    )
    if args.barge_in:
        return _barge_in(options, args.out, args.label)
    if args.utterances == "mid-thought":
        return _mid_thought(options, args.out, args.label)
    with tempfile.TemporaryDirectory(prefix="listener-bench-") as folder:
        turns = asyncio.run(run(options, Path(folder)))
    result = build(options, turns)
    json_path, png_path = save(result, args.out, args.label)
    print(table(result))
    print(f"wrote {json_path} and {png_path}")
    gaps = missing([t.hops for t in turns])
    if gaps:
        print("missing hops: " + ", ".join(gaps), file=sys.stderr)
        return 1
    return 0


def _write(out: Path, name: str, options: BenchOptions, **fields: Any) -> Path:
    date = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    result = {"date": date, "commit": git_commit(), "options": options.as_dict(), **fields}
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{date[:10]}-listener-{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def _mid_thought(options: BenchOptions, out: Path, label: str) -> int:
    with tempfile.TemporaryDirectory(prefix="listener-bench-") as folder:
        results = asyncio.run(mid_thought.run(options, Path(folder)))
    result = {"summary": mid_thought.summary(results), "utterances": mid_thought.as_json(results)}
    path = _write(out, f"mid-thought-{label}", options, bench="listener-mid-thought", **result)
    print(mid_thought.table(result))
    print(f"wrote {path}")
    return 0


def _barge_in(options: BenchOptions, out: Path, label: str) -> int:
    options = dataclasses.replace(
        options,
        question=barge_in.QUESTION,
        transcript=barge_in.INTERRUPTION,
        reply=barge_in.LONG_REPLY,
    )
    with tempfile.TemporaryDirectory(prefix="listener-bench-") as folder:
        turns = asyncio.run(barge_in.run(options, Path(folder)))
    result = {"summary": barge_in.summary(turns), "turns": [vars(t) for t in turns]}
    path = _write(out, f"barge-in-{label}", options, bench="listener-barge-in", **result)
    print(barge_in.table(result))
    print(f"wrote {path}")
    gaps = barge_in.missing(turns)
    if gaps:
        print("missing: " + ", ".join(gaps), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    exit_now(main())
