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
"""

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from bench.listener.hops import missing
from bench.listener.report import build, save, table
from bench.listener.run import BenchOptions, EngineDelays, run

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
    parser.add_argument("--stt-delay-ms", type=float, default=150, help="final transcript delay")
    parser.add_argument("--llm-first-token-ms", type=float, default=150)
    parser.add_argument("--llm-tokens-per-s", type=float, default=200)
    parser.add_argument("--tts-first-audio-ms", type=float, default=150)
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
    options = BenchOptions(
        turns=3 if args.quick else args.turns,
        delays=EngineDelays(
            stt_final_ms=args.stt_delay_ms,
            llm_first_token_ms=args.llm_first_token_ms,
            llm_tokens_per_s=args.llm_tokens_per_s,
            tts_first_audio_ms=args.tts_first_audio_ms,
        ),
        bot={"vad_stop_secs": args.vad_stop_secs, "voxtral_mode": args.stt_mode, **dict(args.set)},
    )
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


if __name__ == "__main__":
    sys.exit(main())
