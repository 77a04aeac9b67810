"""A stand-in for `python -m bot`, for session server tests: no LiveKit, scripted behaviour.

It writes JSON log lines to stderr as the real bot does, including the `Bot joined`
record the server waits for, and one record listing its environment's variable names.
"""

import argparse
import json
import os
import signal
import sys
import time


def log(message: str, **fields: object) -> None:
    sys.stderr.write(json.dumps({"level": "INFO", "message": message, **fields}) + "\n")
    sys.stderr.flush()


def main() -> None:
    parser = argparse.ArgumentParser()
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--room")
    target.add_argument("--standby", action="store_true")
    parser.add_argument("--join-after", type=float, default=0.05)
    parser.add_argument("--never-join", action="store_true")
    parser.add_argument("--ignore-sigterm", action="store_true")
    parser.add_argument("--exit-after", type=float, default=None)
    parser.add_argument("--quote-secret", action="store_true")
    parser.add_argument("--turns", type=int, default=0, help="turn metrics to record on joining")
    args = parser.parse_args()
    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    log("environment", env_names=",".join(sorted(os.environ)))
    if args.standby:
        args.room = sys.stdin.readline().strip()
        if not args.room:
            return
    if args.quote_secret:
        log(f"connecting with secret {os.environ.get('LIVEKIT_API_SECRET')}")
        sys.stderr.write(f"plain line Authorization: Bearer {os.environ.get('CEREBRAS_API_KEY')}\n")
        sys.stderr.flush()
    if not args.never_join:
        time.sleep(args.join_after)
        log("Joined the room", event="Bot joined", room=args.room)
        record_turns(args.turns)
    deadline = time.monotonic() + (args.exit_after if args.exit_after is not None else 3600)
    while time.monotonic() < deadline:
        time.sleep(0.05)
    log("leaving")


def record_turns(count: int) -> None:
    """Add `count` turns to the Prometheus histograms, as the real bot's observer does."""
    from processors.turn_histograms import observe_turn

    for number in range(1, count + 1):
        observe_turn({"turn": number, "voice_to_voice_ms": 500.0 + number, "llm_ttft_ms": None})


if __name__ == "__main__":
    main()
