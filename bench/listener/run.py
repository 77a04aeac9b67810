"""One listener-bench run: the real stack, engines with set delays, N turns."""

import asyncio
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.listener.hops import EngineLogs, turn_hops
from bench.listener.listener import HeardTurn, Listener
from bench.speech import speech
from engines import tone
from tests.conftest import Engines
from tests.stack import GREETING, start_stack

QUESTION = "What is the weather like in Paris this afternoon?"
TRANSCRIPT = "what is the weather like in paris this afternoon"
# A first clause, then the rest of a long first sentence: what a model typically says.
REPLY = (
    "Right now in Paris, it is sunny and twenty degrees with a light breeze from the west. "
    "Enjoy your afternoon."
)
PAUSE_BETWEEN_TURNS_S = 0.6


@dataclass
class EngineDelays:
    """How the engine stand-ins answer: the issue's realistic figures by default."""

    stt_final_ms: float = 150.0
    llm_first_token_ms: float = 150.0
    llm_tokens_per_s: float = 200.0
    tts_first_audio_ms: float = 150.0
    tts_realtime_factor: float = 0.0
    connect_ms: float = 0.0

    def apply(self, engines: Engines) -> None:
        """Set the stand-ins' knobs."""
        for engine in (engines.voxtral, engines.chat, engines.chatterbox):
            engine.faults.connect_delay_s = self.connect_ms / 1000
        engines.voxtral.faults.latency_s = self.stt_final_ms / 1000
        engines.chat.faults.latency_s = self.llm_first_token_ms / 1000
        engines.chat.faults.chunk_delay_s = 1 / self.llm_tokens_per_s
        engines.chatterbox.faults.latency_s = self.tts_first_audio_ms / 1000
        engines.chatterbox.backend.realtime_factor = self.tts_realtime_factor  # type: ignore[attr-defined]


@dataclass
class BenchOptions:
    """What to run."""

    turns: int = 20
    delays: EngineDelays = field(default_factory=EngineDelays)
    # Bot settings by field name (`vad_stop_secs`, `voxtral_mode`, ...).
    bot: dict[str, Any] = field(default_factory=dict)
    question: str = QUESTION
    transcript: str = TRANSCRIPT
    reply: str = REPLY
    turn_timeout_s: float = 20.0

    def as_dict(self) -> dict[str, Any]:
        """For the results file."""
        return asdict(self)


@dataclass
class TurnResult:
    """One turn: every hop's moment (ms after the listener's last voiced audio) and more."""

    hops: dict[str, float | None]
    bot_voice_to_voice_ms: float | None
    bot: dict[str, Any] | None
    reply_heard_whole: bool
    words_heard: list[int]
    # Work the turn cost the engines: utterances the STT finalized, LLM and TTS
    # requests sent, and how many of those the bot closed (withdrawn preemptive replies).
    requests: dict[str, int]


def _window(entries: list[dict[str, Any]], since: float) -> list[dict[str, Any]]:
    return [e for e in entries if e["at"] >= since]


def result_of(heard: HeardTurn, engines: Engines, since: float, reply: str) -> TurnResult:
    """Read one turn's hops from the stand-ins' logs since `since`."""
    logs = EngineLogs(
        stt=_window(engines.voxtral.log.requests, since),
        llm=_window(engines.chat.log.requests, since),
        tts=_window(engines.chatterbox.log.requests, since),
    )
    expected = tone.code(reply)
    return TurnResult(
        hops=turn_hops(heard.speech_end, heard.heard, logs),
        bot_voice_to_voice_ms=heard.bot.get("voice_to_voice_ms") if heard.bot else None,
        bot=heard.bot,
        # The first beep after a long silence is sometimes garbled by the receiver.
        reply_heard_whole=heard.words in (expected, expected[1:]),
        words_heard=heard.words,
        requests={
            "stt_utterances": _count(logs.stt, "utterance", "transcription"),
            "llm": _count(logs.llm, "chat"),
            "llm_closed": _count(logs.llm, "chat_cancelled"),
            "tts": _count(logs.tts, "speech"),
            "tts_closed": _count(logs.tts, "speech_cancelled"),
        },
    )


def _count(entries: Sequence[dict[str, Any]], *kinds: str) -> int:
    return sum(1 for e in entries if e.get("kind") in kinds)


async def run(options: BenchOptions, folder: Path) -> list[TurnResult]:
    """Start everything, hold `options.turns` turns, stop everything."""
    question = speech(options.question)
    overrides = {"log_level": "INFO", "max_concurrent_sessions": 2, **options.bot}
    results: list[TurnResult] = []
    async for stack in start_stack(folder, **overrides):
        options.delays.apply(stack.engines)
        stack.transcriber.script[:] = [options.transcript]
        stack.reply_queue[:] = [options.reply]
        listener = await Listener.join(stack.server.url, GREETING)
        try:
            for _ in range(options.turns):
                since = time.monotonic()
                heard = await listener.turn(question, options.reply, options.turn_timeout_s)
                results.append(result_of(heard, stack.engines, since, options.reply))
                while not listener.quiet_since(PAUSE_BETWEEN_TURNS_S):
                    await asyncio.sleep(0.05)
        finally:
            await listener.leave()
    return results
