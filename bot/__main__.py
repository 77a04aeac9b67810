"""`python -m bot --room NAME`: run the voice agent in one LiveKit room.

Exit codes: 0 when the session ends normally (the room emptied, nobody came within
BOT_IDLE_TIMEOUT_S, or SIGTERM/SIGINT), 1 on an unexpected failure, 2 on bad
configuration or arguments.
"""

import argparse
import asyncio
import re
import sys

from loguru import logger

ROOM_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def _room_name(value: str) -> str:
    if not ROOM_NAME.match(value):
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
    parser.add_argument("--room", required=True, type=_room_name, help="LiveKit room to join")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the bot; return the process exit code."""
    args = parse_args(argv)

    from bot.logging import setup_logging
    from bot.settings import SettingsError, load_settings

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
        room=args.room,
    )
    from bot.room import run_room

    try:
        asyncio.run(run_room(settings, args.room, redactor))
    except Exception:
        logger.exception("The bot failed")
        return 1
    logger.info("Session ended")
    return 0


if __name__ == "__main__":
    sys.exit(main())
