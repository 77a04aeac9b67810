"""The assembled pipeline's spans on a fake call, real VAD and speech.

One trace, a span per turn, STT, LLM, TTS and output spans under each, and nothing that
was said in any attribute.
"""

import asyncio

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from pipecat.frames.frames import TTSSpeakFrame
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
TRANSCRIPT = "zebra quantum marmalade"
REPLY = "Orchid vortex lantern. Saffron tundra meridian."
PROMPT = "Answer as Quillon the cartographer."


def children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in spans if s.parent and s.parent.span_id == parent.context.span_id]


async def test_a_conversation_is_one_trace_of_turns_with_service_and_output_spans(
    engines: Engines, http, speak
) -> None:
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
    try:
        await worker.queue_frame(TTSSpeakFrame(GREETING))
        heard = lambda: tone.decode(transport.speaker.audio_between(0, float("inf")), 24000)  # noqa: E731
        async with asyncio.timeout(20):
            while heard() != tone.code(GREETING):
                await asyncio.sleep(0.05)
        engines.transcripts[:] = [TRANSCRIPT]
        engines.replies[:] = [REPLY]
        transport.microphone.say(speak("Tell me a secret."))
        async with asyncio.timeout(20):
            while heard() != tone.code(GREETING) + tone.code(REPLY):
                await asyncio.sleep(0.05)
    finally:
        await worker.cancel()
        await asyncio.wait_for(running, 10)
        quiet_logging()

    finished = list(spans.get_finished_spans())
    assert {s.context.trace_id for s in finished} == {connect.get_span_context().trace_id}
    (conversation,) = [s for s in finished if s.name == "conversation"]
    assert conversation.parent.span_id == connect.get_span_context().span_id
    turns = sorted(children(finished, conversation), key=lambda s: s.start_time)
    assert [t.name for t in turns] == ["turn", "turn"]
    greeting, answer = ([s.name for s in children(finished, t)] for t in turns)
    assert sorted(greeting) == ["output", "tts"]
    assert sorted(answer) == ["llm", "output", "stt", "tts"]
    assert all(t.attributes["turn.number"] in (1, 2) for t in turns)

    text = attribute_text(finished).lower()
    said = [*tone.words_of(GREETING), *TRANSCRIPT.split(), *tone.words_of(REPLY), "quillon"]
    for word in said:
        assert len(word) < 5 or word not in text, word
