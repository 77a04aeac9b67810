"""The assembled pipeline on a fake call: real Silero VAD, real speech, engine stand-ins."""

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from loguru import logger
from pipecat.frames.frames import (
    Frame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    TranscriptionFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.workers.runner import WorkerRunner

from bench.listener.listener import voiced
from bot.logging import setup_logging
from bot.pipeline import build_worker, create_vad_analyzer
from engines import tone
from engines.scripted import ScriptedResponder, ScriptedTranscriber
from processors.pausing_vad import PausingSileroVADAnalyzer
from processors.playout_frames import PausePlayoutFrame, ResumePlayoutFrame
from tests.conftest import SECRETS, Engines, quiet_logging, running_engines
from tests.fake_transport import FakeTransport
from tests.hearing import whole_with_one_backup
from tests.speech import noise_burst

pytestmark = pytest.mark.pipeline


class FrameLog(BaseObserver):
    """Remembers when interesting frames were first pushed."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[float, Frame]] = []

    async def on_push_frame(self, data: FramePushed) -> None:
        if data.first_push and isinstance(
            data.frame,
            InterimTranscriptionFrame
            | TranscriptionFrame
            | InterruptionFrame
            | PausePlayoutFrame
            | ResumePlayoutFrame,
        ):
            self.seen.append((time.monotonic(), data.frame))

    def times_of(self, kind: type) -> list[float]:
        return [at for at, frame in self.seen if type(frame) is kind]


@dataclass
class Call:
    transport: FakeTransport
    engines: Engines
    frames: FrameLog
    logs: io.StringIO
    turn_metrics: list[dict] = field(default_factory=list)

    def say(self, pcm: bytes) -> float:
        return self.transport.microphone.say(pcm)

    def heard(self, since: float = 0.0, until: float = float("inf")) -> list[int]:
        """The tone-coded words the participant heard in a time window."""
        return tone.decode(self.transport.speaker.audio_between(since, until), 24000)

    async def until(self, condition, timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.05)

    def log_records(self) -> list[dict]:
        return [json.loads(line) for line in self.logs.getvalue().splitlines()]


@pytest.fixture
async def call(engines: Engines, http) -> AsyncIterator[Call]:
    async for running in open_call(engines, http):
        yield running


async def open_call(
    engines: Engines,
    http,
    vad_analyzer: PausingSileroVADAnalyzer | None = None,
    **overrides: object,
) -> AsyncIterator[Call]:
    """The pipeline on a fake call, against these engines, with these settings changed."""
    logs = io.StringIO()
    settings = engines.settings(log_level="DEBUG", **overrides)
    redactor = setup_logging(
        level="DEBUG",
        json_format=True,
        secrets=settings.secret_values(),
        log_transcripts=False,
        stream=logs,
        room="test-room",
    )
    transport = FakeTransport()
    frames = FrameLog()
    worker = build_worker(
        transport=transport,
        settings=settings,
        http=http,
        room="test-room",
        redactor=redactor,
        vad_analyzer=vad_analyzer,
    )
    worker.add_observer(frames)
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    running = asyncio.create_task(runner.run())
    try:
        yield Call(transport, engines, frames, logs)
    finally:
        await worker.cancel()
        await asyncio.wait_for(running, 10)
        quiet_logging()


def sent_turn_metrics(call: Call) -> list[dict]:
    """Turn metrics records the transport carried to the client as server messages."""
    messages = call.transport.speaker.messages
    return [
        m["data"]
        for m in messages
        if m.get("type") == "server-message" and m["data"].get("type") == "turn-metrics"
    ]


def seconds(pcm: bytes, rate: int = 16000) -> float:
    return len(pcm) / 2 / rate


async def test_a_question_gets_a_spoken_answer_that_starts_before_the_llm_finishes(call, speak):
    question = speak("What is the weather like in Paris today?")
    reply = "Paris is sunny today. Expect clear skies and a gentle breeze all afternoon long."
    call.engines.transcripts[:] = ["what is the weather like in paris today"]
    call.engines.replies[:] = [reply]
    call.engines.chat.faults.chunk_delay_s = 0.12  # the LLM streams for about 1.7 s
    spoken_at = call.say(question)
    await call.until(lambda: call.heard() == tone.code(reply))

    # The STT stand-in received the question as one utterance of about its length: the
    # VAD confirms speech ~0.5 s into it (the pre-roll gives back 0.3 s) and finalizes it
    # VAD_PAUSE_SECS after the voice, without espeak-ng's 0.35 s of closing silence.
    (utterance,) = call.engines.voxtral.log.of_kind("utterance")
    received = utterance["audio_bytes"] / 32000
    assert seconds(question) - 0.8 <= received <= seconds(question) + 1.0

    # Partial transcripts came while the user spoke, then the final one.
    assert call.frames.times_of(InterimTranscriptionFrame)
    (final_at,) = call.frames.times_of(TranscriptionFrame)
    assert min(call.frames.times_of(InterimTranscriptionFrame)) < final_at
    assert min(call.frames.times_of(InterimTranscriptionFrame)) < spoken_at

    # Speech started while the LLM stand-in was still streaming.
    (llm_done,) = call.engines.chat.log.of_kind("chat_done")
    first_audio = call.transport.speaker.first_write_after(spoken_at)
    assert first_audio is not None and first_audio < llm_done["at"]

    # One Turn metrics record, numeric and consistent, also sent to the client.
    await call.until(lambda: any(r.get("event") == "Turn metrics" for r in call.log_records()))
    (record,) = [r for r in call.log_records() if r.get("event") == "Turn metrics"]
    for name in (
        "llm_ttft_ms",
        "tts_first_audio_latency_ms",
        "e2e_first_audio_ms",
        "endpointer_latency_ms",
        "voice_to_voice_ms",
    ):
        assert isinstance(record[name], float) and record[name] >= 0, name
    assert record["barge_in_cutoff_ms"] is None
    assert record["voice_to_voice_ms"] == pytest.approx(
        record["endpointer_latency_ms"] + record["e2e_first_audio_ms"], abs=0.2
    )
    # The reply starts preemptively, before the turn ends, but never before the voice.
    assert record["voice_to_voice_ms"] >= record["llm_ttft_ms"]
    measured_gap_ms = (first_audio - final_at) * 1000
    assert record["e2e_first_audio_ms"] <= measured_gap_ms + 1000
    # The client gets the same record; it travels down the pipeline after the log line.
    await call.until(lambda: sent_turn_metrics(call))
    (sent,) = sent_turn_metrics(call)
    assert sent["voice_to_voice_ms"] == record["voice_to_voice_ms"]
    print(
        f"\nround trip: e2e {record['e2e_first_audio_ms']} ms, "
        f"voice-to-voice {record['voice_to_voice_ms']} ms, "
        f"endpointing {record['endpointer_latency_ms']} ms"
    )


async def test_a_vad_loaded_before_the_room_came_is_the_one_that_hears_the_user(
    engines: Engines, http, speak
):
    """A standby bot loads Silero while it waits; its room must then be heard with it."""
    analyzer = create_vad_analyzer(engines.settings())
    async for call in open_call(engines, http, vad_analyzer=analyzer):
        await answered_once(call, speak("What time is it?"), "Quarter past nine.")
    assert analyzer.silence_secs > 0, "the user's voice went through this analyzer"


async def answered_once(call: Call, question: bytes, reply: str) -> None:
    """Ask, and wait until exactly the reply has been heard."""
    call.engines.transcripts[:] = ["a question"]
    call.engines.replies[:] = [reply]
    call.say(question)
    await call.until(lambda: call.heard() == tone.code(reply))


async def test_speaking_over_the_bot_stops_it_and_the_next_answer_is_clean(call, speak):
    long_reply = " ".join(
        "amber basil cedar dahlia ember fennel garnet hazel indigo juniper".split() * 4
    )
    short_reply = "Okay stopping now."
    call.engines.transcripts[:] = ["tell me a long story", "please stop"]
    call.engines.replies[:] = [long_reply, short_reply]
    call.engines.chatterbox.backend.realtime_factor = 1.0  # TTS requests stay in flight
    old, new = tone.code(long_reply), tone.code(short_reply)
    assert not set(old) & set(new), "the two replies must sound different"

    asked_at = call.say(speak("Tell me a long story."))
    await call.until(lambda: len(call.heard(since=asked_at)) >= 6)
    stop = speak("Please stop.")
    interrupted_at = call.say(stop) - seconds(stop)
    await call.until(lambda: call.heard(since=interrupted_at)[-len(new) :] == new)

    interruption_at = min(
        at for at in call.frames.times_of(InterruptionFrame) if at > interrupted_at
    )
    # Measured at the participant: no audio of the old reply after the interruption, and
    # what is heard from then on is exactly the new reply.
    assert call.heard(since=interruption_at) == new, "nothing of the old reply is heard later"
    heard_before = call.heard(since=asked_at, until=interruption_at)
    assert heard_before and len(heard_before) < len(old), "the old reply was cut short"
    assert set(heard_before) <= set(old)
    assert call.engines.chatterbox.log.of_kind("speech_cancelled"), "TTS request was closed"
    speech_to_cut = (interruption_at - interrupted_at) * 1000
    assert speech_to_cut < 1500, f"cut-off {speech_to_cut:.0f} ms after speech began"

    await call.until(
        lambda: any(r.get("barge_in_cutoff_ms") is not None for r in call.log_records())
    )
    cutoff = next(
        r["barge_in_cutoff_ms"] for r in call.log_records() if r.get("barge_in_cutoff_ms")
    )
    # The audio paused as the sound began, before the VAD's 200 ms confirmed speech.
    assert 0 <= cutoff < 150
    print(f"\nbarge-in: speech to interruption {speech_to_cut:.0f} ms, logged cutoff {cutoff} ms")


async def test_logs_of_a_whole_run_hold_no_secret_and_no_transcript(call, speak):
    transcript = "zebra quantum marmalade"
    reply = "Orchid vortex lantern. Saffron tundra meridian."
    call.engines.transcripts[:] = [transcript]
    call.engines.replies[:] = [reply]
    call.say(speak("My secret is zebra quantum marmalade."))
    await call.until(lambda: call.heard() == tone.code(reply))
    try:
        raise RuntimeError(f"forced failure with {SECRETS['cerebras_api_key']} after {transcript}")
    except RuntimeError as e:
        await call.transport.speaker.push_error(f"forced: {e}", exception=e)
        logger.opt(exception=e).error(
            f"forced failure, Authorization: Bearer {SECRETS['voxtral_api_key']}"
        )
    await asyncio.sleep(0.2)

    out = call.logs.getvalue()
    assert "Generating TTS" in out, "Pipecat's debug lines were captured"
    assert "forced failure" in out and "Traceback" in out
    for secret in SECRETS.values():
        assert secret not in out
    for word in [*transcript.split(), *tone.words_of(reply)]:
        assert word not in out.lower(), word


def booking_reply(question: str) -> str:
    """The whole sentence gets its answer; anything shorter an answer never to be heard."""
    if question == "book a table with a view for four people":
        return "Booked for four."
    return "Cancelled reply. " + " ".join(["amber"] * 60)


async def test_a_pause_shorter_than_the_turn_end_withdraws_the_preemptive_reply(http, speak):
    # Each pause is long enough for the VAD to report it (VAD_PAUSE_SECS) and the
    # transcript to come back, and well short of the endpointing silence (VAD_STOP_SECS).
    parts = ["book a table", "with a view for four people"]
    transcriber = ScriptedTranscriber(lambda _: parts.pop(0) if parts else "")
    async with running_engines(transcriber, ScriptedResponder(booking_reply)) as engines:
        async for call in open_call(engines, http, vad_stop_secs=0.8):
            await withdrawn_then_answered(call, speak)


async def withdrawn_then_answered(call: Call, speak) -> None:
    first, rest = voiced(speak("Book a table")), speak("with a view for four people.")
    reply = "Booked for four."
    call.engines.chat.faults.chunk_delay_s = 0.005  # an early reply streams for ~0.3 s
    call.engines.chatterbox.faults.latency_s = 0.5  # its TTS request is still waiting
    started = time.monotonic()
    call.say(first + bytes(int(0.35 * 32000)) + rest)
    await call.until(lambda: call.heard(since=started) == tone.code(reply))
    await asyncio.sleep(1.0)

    # One reply was heard, to the whole turn, and nothing of an early one.
    assert call.heard(since=started) == tone.code(reply)
    # The STT finalized the first half early, yet received all of the rest: the service
    # holds new speech until the early transcript is in (Voxtral drops audio sent while
    # it finishes one), and the pre-roll covers the moment the VAD took to hear it.
    (_, *later) = call.engines.voxtral.log.of_kind("utterance")
    assert sum(u["audio_bytes"] for u in later) / 32000 >= seconds(voiced(rest))
    requests = call.engines.chat.log.of_kind("chat")
    users = [[m["content"] for m in r["body"]["messages"] if m["role"] == "user"] for r in requests]
    assert users[0] == ["book a table"], "the reply started at the pause"
    assert users[-1] == ["book a table with a view for four people"]
    # The engines saw every earlier LLM request, and the TTS request of the first,
    # closed by the bot.
    closed_chat = {e["request"] for e in call.engines.chat.log.of_kind("chat_cancelled")}
    assert closed_chat == {r["request"] for r in requests[:-1]}
    speech = call.engines.chatterbox.log.of_kind("speech")
    closed_speech = {e["request"] for e in call.engines.chatterbox.log.of_kind("speech_cancelled")}
    assert speech[0]["body"]["input"] == "Cancelled reply."
    assert speech[0]["request"] in closed_speech
    assert speech[-1]["body"]["input"] == reply
    assert {s["request"] for s in speech[:-1]} <= closed_speech


# Twenty-four words with distinct tones, so the order heard tells what was skipped or repeated.
LONG_REPLY = (
    "amber basil cedar dahlia ember garnet hazel indigo juniper lilac marble orchid "
    "pepper raven thistle umber violet willow yarrow zinnia acorn bramble clover daisy"
)


async def talk_over_the_bot(
    call: Call, speak, sound: bytes, transcript: str
) -> tuple[float, float]:
    """Ask for the long reply, make a sound once six words are heard.

    Returns when the question was asked and when the sound began.
    """
    call.engines.transcripts[:] = ["tell me a long story", transcript]
    call.engines.replies[:] = [LONG_REPLY]
    call.engines.chatterbox.backend.realtime_factor = 1.0  # TTS requests stay in flight
    asked_at = call.say(speak("Tell me a long story."))
    await call.until(lambda: len(call.heard(since=asked_at)) >= 6)
    return asked_at, call.say(sound) - len(sound) / 2 / 16000


async def test_a_sound_without_words_pauses_the_bot_which_then_plays_on(call, speak):
    asked_at, _ = await talk_over_the_bot(call, speak, speak("Hmm."), "")
    expected = tone.code(LONG_REPLY)
    await call.until(lambda: call.heard(since=asked_at)[-1:] == expected[-1:], timeout=30)

    (paused_at,) = call.frames.times_of(PausePlayoutFrame)
    (resumed_at,) = call.frames.times_of(ResumePlayoutFrame)
    assert not interruptions_since(call, asked_at), "the reply was not interrupted"
    heard = call.heard(since=asked_at)
    assert whole_with_one_backup(heard, expected), heard
    # Nothing was written while paused, and the pause lasted the timeout after the sound.
    assert call.transport.speaker.first_write_after(paused_at + 0.05) >= resumed_at
    assert 0.9 <= resumed_at - paused_at <= 3.0
    print(f"\nsound without words: paused {resumed_at - paused_at:.2f} s, heard {len(heard)} words")


async def test_a_short_noise_burst_pauses_the_bot_only_while_it_lasts(call, speak):
    asked_at, sound_at = await talk_over_the_bot(call, speak, noise_burst(0.15), "")
    expected = tone.code(LONG_REPLY)
    await call.until(lambda: call.heard(since=asked_at)[-1:] == expected[-1:], timeout=30)
    assert whole_with_one_backup(call.heard(since=asked_at), expected)
    assert not interruptions_since(call, asked_at)
    # Paused as the burst began, before any VAD could confirm it; played on soon after it.
    (paused_at,) = call.frames.times_of(PausePlayoutFrame)
    (resumed_at,) = call.frames.times_of(ResumePlayoutFrame)
    assert paused_at - sound_at < 0.15, f"paused {paused_at - sound_at:.3f} s after the burst"
    assert resumed_at - paused_at < 0.7, f"paused {resumed_at - paused_at:.2f} s"


async def test_mm_hm_does_not_interrupt_and_stays_out_of_the_context(call, speak):
    asked_at, _ = await talk_over_the_bot(call, speak, speak("Mm-hm."), "Mm-hm.")
    expected = tone.code(LONG_REPLY)
    await call.until(lambda: call.heard(since=asked_at)[-1:] == expected[-1:], timeout=30)
    assert whole_with_one_backup(call.heard(since=asked_at), expected)
    assert not interruptions_since(call, asked_at)
    # The backchannel resumed the bot as soon as its transcript was in.
    (paused_at,) = call.frames.times_of(PausePlayoutFrame)
    (resumed_at,) = call.frames.times_of(ResumePlayoutFrame)
    assert resumed_at - paused_at < 1.5
    # The next question is answered from a context without the "mm-hm".
    call.engines.transcripts[:] = ["what next"]
    call.engines.replies[:] = ["Done."]
    call.say(speak("What next?"))
    await call.until(lambda: call.engines.chat.log.of_kind("chat")[1:])
    messages = call.engines.chat.log.of_kind("chat")[-1]["body"]["messages"]
    users = [m["content"] for m in messages if m["role"] == "user"]
    assert users == ["tell me a long story", "what next"]


def interruptions_since(call: Call, moment: float) -> list[float]:
    return [at for at in call.frames.times_of(InterruptionFrame) if at > moment]
