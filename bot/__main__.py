"""`python -m bot --room NAME`: run the voice agent in one LiveKit room.

`python -m bot --standby` loads everything first, then reads its assignment, one JSON
line `{"room": ..., "trace_context": {...}}`, from standard input: that is how the
session server starts every bot (`bot/launch.py`), with `--control-fd N` for the pipe
the bot reports on. A bot given `--control-fd` takes its configuration from the
environment alone: the supervisor built it, and a `.env` in the working directory was
not meant for this bot.

`python -m bot --fork-server FD` imports all that once and forks such standby bots on
request (`bot/fork_server.py`): the session server's fast way to start them.

`python -m bot worker` runs a worker host instead (`bot.worker`): LiveKit's agent
dispatch sends it rooms.

Exit codes: 0 when the session ends normally (the room emptied, nobody came within
BOT_IDLE_TIMEOUT_S, the SFU went away, or SIGTERM/SIGINT), 1 on an unexpected failure,
2 on bad configuration, arguments or assignment, 3 when LiveKit could not be reached
within LIVEKIT_CONNECT_TIMEOUT_S.
"""

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

from loguru import logger

from bot.control import ControlChannel, NoControl
from bot.launch import (
    CONTROL_FD_FLAG,
    EXIT_FAILED,
    EXIT_LIVEKIT_UNREACHABLE,
    EXIT_OK,
    EXIT_USAGE,
    FORK_SERVER_FLAG,
    ROOM_FLAG,
    STANDBY_FLAG,
    Assignment,
    AssignmentError,
)
from bot.names import NAME_RULE, is_valid_name
from bot.process_exit import exit_now

if TYPE_CHECKING:
    from processors.pausing_vad import PausingSileroVADAnalyzer


def _room_name(value: str) -> str:
    if not is_valid_name(value):
        raise argparse.ArgumentTypeError(f"must be {NAME_RULE}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description=(
            "Join a LiveKit room as the voice agent, greet the first participant and talk "
            "until the last one leaves. Configuration comes from the environment and .env "
            "(see .env.example)."
        ),
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(ROOM_FLAG, type=_room_name, help="LiveKit room to join")
    target.add_argument(
        STANDBY_FLAG,
        action="store_true",
        help='load everything, then read {"room": ..., "trace_context": {...}} from stdin',
    )
    target.add_argument(
        FORK_SERVER_FLAG,
        type=int,
        metavar="FD",
        help="import everything, then fork a standby bot per request on socket FD",
    )
    parser.add_argument(
        CONTROL_FD_FLAG,
        type=int,
        metavar="FD",
        help="report to a supervisor on this file descriptor; read no .env file",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the bot; return the process exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:
        from bot.worker import main as run_worker_host

        return run_worker_host()
    args = parse_args(argv)
    if args.fork_server is not None:
        from bot.fork_server import serve
        from bot.preload import preload

        return serve(args.fork_server, preload, main)
    supervised = args.control_fd is not None
    try:
        control = ControlChannel(args.control_fd) if supervised else NoControl()
    except OSError:
        sys.stderr.write(f"{CONTROL_FD_FLAG} {args.control_fd} is not an open file descriptor\n")
        return EXIT_USAGE

    from bot.logging import setup_logging
    from bot.settings import SettingsError, load_settings
    from bot.tracing import setup_tracing, shutdown_tracing

    try:
        settings = load_settings(**({"_env_file": None} if supervised else {}))
    except SettingsError as e:
        sys.stderr.write(f"{e}\n")
        control.error("bad_configuration", str(e))
        return EXIT_USAGE
    redactor = setup_logging(
        **settings.logging_options(),
        **({"room": args.room} if args.room else {}),
    )
    setup_tracing(settings, "bot")
    from bot.pipeline import create_vad_analyzer
    from bot.room import LiveKitUnreachable, run_room

    vad_analyzer: PausingSileroVADAnalyzer | None = None
    if args.standby:
        from bot.preload import finish

        finish()
        # Silero's model loads while the bot waits, not after its room has come.
        vad_analyzer = create_vad_analyzer(settings)
        logger.info("Standing by for a room")
        line = sys.stdin.readline()
        if not line:
            logger.info("No room given, leaving")
            return EXIT_OK
        try:
            assignment = Assignment.from_line(line)
        except AssignmentError as e:
            logger.error(f"Refused the assignment on standard input: {e}")
            control.error("bad_assignment", str(e))
            return EXIT_USAGE
        logger.configure(extra={"room": assignment.room})
    else:
        assignment = Assignment(room=args.room)
    try:
        reason = asyncio.run(
            run_room(settings, assignment, redactor, control, vad_analyzer=vad_analyzer)
        )
    except LiveKitUnreachable as e:
        logger.error(str(e))
        control.error("livekit_unreachable", str(e))
        return EXIT_LIVEKIT_UNREACHABLE
    except Exception:
        logger.exception("The bot failed")
        control.error("crashed", "the bot failed unexpectedly; its log has the traceback")
        return EXIT_FAILED
    finally:
        shutdown_tracing()  # the session's last spans leave before the process does
    control.ended(reason)
    logger.info("Session ended")
    return EXIT_OK


if __name__ == "__main__":
    exit_now(main())
