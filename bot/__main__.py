"""`python -m bot --room NAME`: run the voice agent in one LiveKit room.

`python -m bot --standby` loads everything first, then reads the room's name from
standard input: the session server keeps one such bot warm so a new conversation does
not wait for Python to import the pipeline.

Exit codes: 0 when the session ends normally (the room emptied, nobody came within
BOT_IDLE_TIMEOUT_S, or SIGTERM/SIGINT), 1 on an unexpected failure, 2 on bad
configuration or arguments.
"""

import argparse
import asyncio
import re
import sys

from loguru import logger

ROOM_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")


def _room_name(value: str) -> str:
    if not ROOM_NAME.fullmatch(value):
        raise argparse.ArgumentTypeError("must match [a-zA-Z0-9_-]{1,64}")
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
    target.add_argument("--room", type=_room_name, help="LiveKit room to join")
    target.add_argument(
        "--standby",
        action="store_true",
        help="load everything, then read the room's name from standard input",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the bot; return the process exit code."""
    args = parse_args(argv)

    from bot.logging import setup_logging
    from bot.settings import SettingsError, load_settings
    from bot.tracing import setup_tracing, shutdown_tracing

    try:
        settings = load_settings()
    except SettingsError as e:
        sys.stderr.write(f"{e}\n")
        return 2
    redactor = setup_logging(
        level=settings.log_level,
        json_format=settings.log_format == "json",
        secrets=settings.secret_values(),
        log_transcripts=settings.log_transcripts,
        **({"room": args.room} if args.room else {}),
    )
    setup_tracing(settings, "bot")
    from bot.room import run_room

    room = args.room
    if args.standby:
        logger.info("Standing by for a room")
        line = sys.stdin.readline().strip()
        if not line:
            logger.info("No room given, leaving")
            return 0
        if not ROOM_NAME.fullmatch(line):
            logger.error("The room name given on standard input is invalid")
            return 2
        room = line
        logger.configure(extra={"room": room})
    try:
        asyncio.run(run_room(settings, room, redactor))
    except Exception:
        logger.exception("The bot failed")
        return 1
    finally:
        shutdown_tracing()  # the session's last spans leave before the process does
    logger.info("Session ended")
    return 0


if __name__ == "__main__":
    sys.exit(main())
