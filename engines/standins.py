"""`python -m engines.standins`: the scripted stand-ins as one local process.

Serves the three wire protocols with scripted backends, for trying the bot without
engines and for end-to-end tests: the transcriber answers with the next scripted
transcript, the chat model with the next scripted reply, and the speech engine speaks
in the tone code (`engines.tone`).
"""

import argparse
import asyncio
import signal

from loguru import logger

from engines.chat_server import create_chat_app
from engines.chatterbox_server import create_chatterbox_app
from engines.scripted import ScriptedResponder, ScriptedTranscriber, ToneSynthesizer
from engines.serving import serve
from engines.voxtral_server import create_voxtral_app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(prog="python -m engines.standins", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--voxtral-port", type=int, default=8000)
    parser.add_argument("--chatterbox-port", type=int, default=4123)
    parser.add_argument("--chat-port", type=int, default=8010)
    parser.add_argument("--voxtral-model", default="mistralai/Voxtral-Mini-4B-Realtime-2602")
    parser.add_argument("--transcript", action="append", default=[], help="repeatable")
    parser.add_argument("--reply", action="append", default=[], help="repeatable")
    parser.add_argument("--tts-realtime-factor", type=float, default=0.5)
    return parser.parse_args(argv)


async def serve_standins(args: argparse.Namespace) -> None:
    """Serve until SIGINT or SIGTERM."""
    transcripts = args.transcript or ["hello there"]
    replies = args.reply or ["Hello! This is the scripted stand-in answering you."]
    apps = [
        (
            create_voxtral_app(ScriptedTranscriber(transcripts), model=args.voxtral_model),
            args.voxtral_port,
        ),
        (
            create_chatterbox_app(ToneSynthesizer(realtime_factor=args.tts_realtime_factor)),
            args.chatterbox_port,
        ),
        (create_chat_app(ScriptedResponder(replies)), args.chat_port),
    ]
    served = [await serve(app, args.host, port) for app, port in apps]
    logger.info(f"stand-ins listening on {', '.join(s.url for s in served)}")
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    for s in served:
        await s.close()


if __name__ == "__main__":
    asyncio.run(serve_standins(parse_args()))
