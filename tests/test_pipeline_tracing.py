"""The assembled pipeline's spans on a fake call, real VAD and speech.

One trace, a span per turn, STT, LLM, TTS and output spans under each, and nothing that
was said in any attribute.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import numpy as np
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext
from pipecat.frames.frames import TTSSpeakFrame
from pipecat.pipeline.worker import PipelineWorker
from pipecat.workers.runner import WorkerRunner

from bot.logging import setup_logging
from bot.pipeline import build_worker
from bot.tracing import start_conversation, trace_context
from engines import tone
from tests.conftest import Engines, quiet_logging
from tests.fake_transport import FakeTransport
from tests.span_capture import attribute_text, recorded_spans

pytestmark = pytest.mark.pipeline

GREETING = "Welcome to Bellweather."
PROMPT = "Answer as Quillon the cartographer."


@dataclass
class TracedCall:
    transport: FakeTransport
    engines: Engines
    worker: PipelineWorker
    spans: InMemorySpanExporter
    connect: SpanContext
    running: asyncio.Task

    async def end(self) -> None:
        """End the conversation; its last spans end with the worker's cleanup."""
        if self.running.done():
            return
        await self.worker.cancel()
        await asyncio.wait_for(self.running, 10)

    def quiet_for(self, seconds: float) -> bool:
        """Whether the bot has played no sound for `seconds`."""
        sounding = [
            at
            for at, audio in self.transport.speaker.played
            if np.abs(np.frombuffer(audio, dtype=np.int16)).max(initial=0) > 1000
        ]
        return not sounding or time.monotonic() - sounding[-1] >= seconds

    def heard(self, since: float = 0.0) -> list[int]:
        return tone.decode(self.transport.speaker.audio_between(since, float("inf")), 24000)

    async def until(self, condition: Callable[[], bool], timeout: float = 20.0) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not condition():
                    await asyncio.sleep(0.05)
        except TimeoutError:
            pytest.fail(f"timed out after {timeout:.0f}s; heard {self.heard()}")

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())


@pytest.fixture
async def call(engines: Engines, http) -> AsyncIterator[TracedCall]:
    """A greeted conversation, traced as a bot handed a /connect span's context traces it."""
    spans = recorded_spans()
    settings = engines.settings(
        otel_exporter_otlp_endpoint="http://127.0.0.1:9", system_prompt=PROMPT, greeting=GREETING
    )
    redactor = setup_logging(level="WARNING", json_format=True, log_transcripts=False, secrets=[])
    transport = FakeTransport()
    worker = build_worker(
        transport=transport, settings=settings, http=http, room="traced-room", redactor=redactor
    )
    with TracerProvider().get_tracer("server").start_as_current_span("POST /connect") as connect:
        handed_over = trace_context()
    start_conversation(worker, handed_over)
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    running = asyncio.create_task(runner.run())
    call = TracedCall(transport, engines, worker, spans, connect.get_span_context(), running)
    try:
        await worker.queue_frame(TTSSpeakFrame(GREETING))
        # Played out, not only decodable: speech over its last word would pause it.
        await call.until(lambda: call.heard() == tone.code(GREETING) and call.quiet_for(0.3))
        yield call
    finally:
        await call.end()
        quiet_logging()


def children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    return sorted(
        (s for s in spans if s.parent and s.parent.span_id == parent.context.span_id),
        key=lambda s: s.start_time or 0,
    )


def turns_of(call: TracedCall) -> list[ReadableSpan]:
    finished = call.finished()
    (conversation,) = [s for s in finished if s.name == "conversation"]
    assert conversation.parent is not None
    assert conversation.parent.span_id == call.connect.span_id
    return children(finished, conversation)


async def test_a_conversation_is_one_trace_of_turns_with_service_and_output_spans(
    call: TracedCall, speak
) -> None:
    transcript = "zebra quantum marmalade"
    reply = "Orchid vortex lantern. Saffron tundra meridian."
    call.engines.transcripts[:] = [transcript]
    call.engines.replies[:] = [reply]
    call.transport.microphone.say(speak("Tell me a secret."))
    await call.until(lambda: call.heard() == tone.code(GREETING) + tone.code(reply))
    await call.end()

    finished = call.finished()
    assert {s.context.trace_id for s in finished} == {call.connect.trace_id}
    turns = turns_of(call)
    assert [(t.name, (t.attributes or {})["turn.number"]) for t in turns] == [
        ("turn", 1),
        ("turn", 2),
    ]
    greeting, answer = ([s.name for s in children(finished, t)] for t in turns)
    assert sorted(greeting) == ["output", "tts"]
    # A pause inside the question (VAD_PAUSE_SECS) may add an STT span, and a preemptive
    # reply withdrawn at it LLM and TTS spans; one output was heard.
    assert set(answer) == {"llm", "output", "stt", "tts"}
    assert answer.count("output") == 1
    (output,) = [s for s in children(finished, turns[1]) if s.name == "output"]
    assert output.attributes == {"output.interrupted": False}

    text = attribute_text(finished).lower()
    said = [*tone.words_of(GREETING), *transcript.split(), *tone.words_of(reply), "quillon"]
    for word in said:
        assert len(word) < 5 or word not in text, word


async def test_a_reply_cut_off_by_the_user_ends_its_output_span_marked_interrupted(
    call: TracedCall, speak
) -> None:
    long_reply = " ".join("amber basil cedar dahlia ember fennel garnet hazel".split() * 4)
    call.engines.transcripts[:] = ["tell me a long story", "please stop"]
    call.engines.replies[:] = [long_reply, "Okay stopping now."]
    call.engines.chatterbox.backend.realtime_factor = 1.0  # TTS requests stay in flight
    asked_at = call.transport.microphone.say(speak("Tell me a long story."))
    await call.until(lambda: len(call.heard(since=asked_at)) >= 6)
    call.transport.microphone.say(speak("Please stop."))
    await call.until(lambda: len(turns_of_so_far(call)) >= 3)
    await call.end()

    finished = call.finished()
    story = turns_of(call)[1]
    (output,) = [s for s in children(finished, story) if s.name == "output"]
    assert output.attributes == {"output.interrupted": True}
    assert (story.attributes or {})["turn.was_interrupted"] is True


def turns_of_so_far(call: TracedCall) -> list[ReadableSpan]:
    return [s for s in call.finished() if s.name == "turn"]
