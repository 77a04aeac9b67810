"""A stand-in for `python -m bot`, for session server tests: no LiveKit, scripted behaviour.

It is launched exactly as the real bot is (`bot/launch.py`): `--standby --control-fd N`,
its assignment as one JSON line on stdin, "joined"/"ended"/"error" on the control pipe.
It logs JSON lines to stderr as the real bot does, one record listing its environment's
variable names and one with the assignment it received. Like the real bot, it can
be a fork server (`--fork-server FD`), each fork then running as a standby stand-in.
"""

import argparse
import json
import os
import signal
import sys
import threading
import time

from bot.control import ControlChannel, NoControl
from bot.launch import FORK_SERVER_FLAG, Assignment

SILENT = "--silent" in sys.argv


def log(message: str, **fields: object) -> None:
    if SILENT:
        return
    sys.stderr.write(json.dumps({"level": "INFO", "message": message, **fields}) + "\n")
    sys.stderr.flush()


def main() -> int:
    parser = argparse.ArgumentParser()
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--room")
    target.add_argument("--standby", action="store_true")
    parser.add_argument("--control-fd", type=int)
    parser.add_argument("--join-after", type=float, default=0.05)
    parser.add_argument("--never-join", action="store_true")
    parser.add_argument("--unreachable", action="store_true", help="report LiveKit unreachable")
    parser.add_argument("--ignore-sigterm", action="store_true")
    parser.add_argument("--exit-after", type=float, default=None)
    parser.add_argument("--quote-secret", action="store_true")
    parser.add_argument("--silent", action="store_true", help="write no log line at all")
    parser.add_argument("--preload-thread", action="store_true", help="(fork server) a thread")
    parser.add_argument("--turns", type=int, default=0, help="turn metrics to record on joining")
    args = parser.parse_args()
    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    control = ControlChannel(args.control_fd) if args.control_fd is not None else NoControl()
    log("environment", env_names=",".join(sorted(os.environ)))
    assignment = Assignment(args.room)
    if args.standby:
        line = sys.stdin.readline()
        if not line:
            return 0
        assignment = Assignment.from_line(line)
    log("assignment", assigned_room=assignment.room, trace=json.dumps(assignment.trace_context))
    if args.quote_secret:
        log(f"connecting with secret {os.environ.get('LIVEKIT_API_SECRET')}")
        sys.stderr.write(f"plain line Authorization: Bearer {os.environ.get('CEREBRAS_API_KEY')}\n")
        sys.stderr.flush()
    if args.unreachable:
        time.sleep(args.join_after)
        control.error(
            "livekit_unreachable", "Could not reach LiveKit at ws://127.0.0.1:9 within 1s"
        )
        return 3
    if not args.never_join:
        time.sleep(args.join_after)
        log("Joined the room", room=assignment.room)
        control.joined()
        record_turns(args.turns)
    deadline = time.monotonic() + (args.exit_after if args.exit_after is not None else 3600)
    while time.monotonic() < deadline:
        time.sleep(0.05)
    control.ended("room_empty")
    log("leaving")
    return 0


def preload() -> None:
    """What the stand-in's fork server loads: nothing, or a thread it must not fork with."""
    if "--preload-thread" in sys.argv:
        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()


def record_turns(count: int) -> None:
    """Add `count` turns to the Prometheus histograms, as the real bot's observer does."""
    from processors.turn_histograms import observe_turn

    for number in range(1, count + 1):
        observe_turn({"turn": number, "voice_to_voice_ms": 500.0 + number, "llm_ttft_ms": None})


if __name__ == "__main__":
    if FORK_SERVER_FLAG in sys.argv:
        from bot.fork_server import serve

        fd = int(sys.argv[sys.argv.index(FORK_SERVER_FLAG) + 1])
        sys.exit(serve(fd, preload, main))
    sys.exit(main())
