"""Tracing in-process: span redaction, the exporter, the /connect span, the parent link."""

import json
import time
from collections.abc import Callable

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.utils.tracing.service_attributes import (
    add_llm_span_attributes,
    add_stt_span_attributes,
    add_tts_span_attributes,
)

from bot.span_redaction import RedactingSpanExporter
from bot.tracing import span_exporter, start_conversation, trace_context
from tests.conftest import ApiFactory, LogCapture, server_settings
from tests.span_capture import attribute_text, recorded_spans

pytestmark = pytest.mark.unit

TRANSCRIPT = "my card number is four two four two"
PROMPT = "You are a discreet assistant for Zanzibar Holdings"
REPLY = "Your balance is seventeen thousand dollars"
IDENTITY = "user-ada-lovelace"
# Not hex, so a random session or trace id cannot contain them by chance.
ROOM = "lounge"
CALLER = "quincy"


def redacted_spans(log_transcripts: bool = False) -> list:
    """Spans shaped exactly as Pipecat's tracing shapes them, through the export path."""
    memory = InMemorySpanExporter()
    exporter = memory if log_transcripts else RedactingSpanExporter(memory)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("turn") as turn:
        turn.set_attribute("turn.number", 2)
        turn.set_attribute("turn.was_interrupted", False)
        with tracer.start_as_current_span("stt") as stt:
            add_stt_span_attributes(
                stt,
                service_name="VoxtralRealtimeSTTService",
                model="voxtral-mini",
                transcript=TRANSCRIPT,
                is_final=True,
                user_id=IDENTITY,
                ttfb=0.21,
            )
        with tracer.start_as_current_span("llm") as llm:
            add_llm_span_attributes(
                llm,
                service_name="CerebrasPolicyLLMService",
                model="gpt-oss-120b",
                messages=f'[{{"role": "user", "content": "{TRANSCRIPT}"}}]',
                output=REPLY,
                system_instructions=PROMPT,
                parameters={"temperature": 0.7, "seed": 3, "reasoning_effort": PROMPT},
                ttfb=0.15,
            )
            llm.set_attribute("gen_ai.usage.input_tokens", 41)
            llm.record_exception(ValueError(f"could not parse {REPLY}"))
            llm.set_status(Status(StatusCode.ERROR, f"failed on {TRANSCRIPT}"))
        with tracer.start_as_current_span("tts") as tts:
            add_tts_span_attributes(
                tts,
                service_name="ChatterboxTTSService",
                model="chatterbox",
                voice_id="default",
                text=REPLY,
                character_count=len(REPLY),
            )
    return list(memory.get_finished_spans())


def test_no_transcript_prompt_reply_or_identity_leaves_in_a_span() -> None:
    spans = redacted_spans()
    text = attribute_text(spans)
    for secret in (TRANSCRIPT, PROMPT, REPLY, IDENTITY, "four two", "Zanzibar", "seventeen"):
        assert secret not in text

    by_name = {span.name: span for span in spans}
    assert set(by_name) == {"turn", "stt", "llm", "tts"}
    # What an operator needs to read a trace stays: models, timings, counts, structure.
    assert by_name["turn"].attributes == {"turn.number": 2, "turn.was_interrupted": False}
    assert by_name["stt"].attributes["gen_ai.request.model"] == "voxtral-mini"
    assert by_name["stt"].attributes["metrics.ttfb"] == 0.21
    assert by_name["stt"].attributes["is_final"] is True
    llm = by_name["llm"]
    assert llm.attributes["gen_ai.request.temperature"] == 0.7
    assert llm.attributes["gen_ai.usage.input_tokens"] == 41
    assert "param.reasoning_effort" not in llm.attributes  # a string under a numeric prefix
    assert llm.status.status_code == StatusCode.ERROR
    assert [dict(e.attributes or {}) for e in llm.events] == [
        {"exception.type": "ValueError", "exception.escaped": "False"}
    ]
    assert by_name["tts"].attributes["metrics.character_count"] == len(REPLY)
    assert by_name["tts"].attributes["voice_id"] == "default"
    assert by_name["stt"].parent.span_id == by_name["turn"].context.span_id


def test_the_same_spans_unredacted_do_carry_the_text() -> None:
    """The check above could not fail if Pipecat's helpers recorded no text at all."""
    text = attribute_text(redacted_spans(log_transcripts=True))
    for secret in (TRANSCRIPT, PROMPT, REPLY, IDENTITY):
        assert secret in text


def test_transcripts_reach_the_exporter_only_when_allowed() -> None:
    endpoint = "http://127.0.0.1:4318"
    default = span_exporter(server_settings(otel_exporter_otlp_endpoint=endpoint))
    allowed = span_exporter(
        server_settings(otel_exporter_otlp_endpoint=endpoint, log_transcripts=True)
    )
    assert isinstance(default, RedactingSpanExporter)
    assert isinstance(allowed, OTLPSpanExporter)


def test_connect_is_one_server_span_with_method_route_status_and_session(
    api: ApiFactory, captured_logs: LogCapture
) -> None:
    spans = recorded_spans()
    client = api()
    answer = client.post("/connect", json={"room": ROOM, "identity": CALLER})
    assert answer.status_code == 200
    wait_until(lambda: assignments(captured_logs), 10)
    assert client.post("/connect", json={"room": ROOM, "identity": "bob"}).status_code == 409
    assert client.get("/health").status_code == 200

    ok, busy = spans.get_finished_spans()
    assert ok.name == busy.name == "POST /connect"
    assert ok.kind == SpanKind.SERVER
    assert ok.attributes == {
        "http.request.method": "POST",
        "http.route": "/connect",
        "http.response.status_code": 200,
        "session.id": answer.json()["session_id"],
    }
    assert (busy.attributes or {})["http.response.status_code"] == 409
    assert ROOM not in attribute_text([ok, busy]) and CALLER not in attribute_text([ok, busy])
    # The bot was handed this span's context with its room (W3C traceparent).
    span = ok.get_span_context()
    assert span is not None
    parent = f"00-{span.trace_id:032x}-{span.span_id:016x}-{span.trace_flags:02x}"
    assert assignments(captured_logs) == {ROOM: {"traceparent": parent}}


def assignments(logs: LogCapture) -> dict[str, dict[str, str]]:
    """What the stand-in bots logged they were handed: room and trace context."""
    return {
        r["assigned_room"]: json.loads(r["trace"])
        for r in logs.records()
        if r.get("message") == "assignment"
    }


def wait_until(condition: Callable[[], object], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_the_conversation_span_is_a_child_of_the_span_it_is_handed() -> None:
    spans = recorded_spans()
    tracer = TracerProvider().get_tracer("server")  # stands for the session server
    with tracer.start_as_current_span("POST /connect") as connect:
        carrier = trace_context()
    assert set(carrier) == {"traceparent"}

    worker = PipelineWorker(Pipeline([FrameProcessor()]), enable_tracing=True)
    start_conversation(worker, carrier)
    assert worker.turn_trace_observer is not None
    worker.turn_trace_observer.end_conversation_tracing()

    (conversation,) = spans.get_finished_spans()
    assert conversation.name == "conversation"
    assert conversation.context.trace_id == connect.get_span_context().trace_id
    assert conversation.parent is not None
    assert conversation.parent.span_id == connect.get_span_context().span_id


def test_without_tracing_nothing_is_handed_on_and_no_conversation_span_opens() -> None:
    spans = recorded_spans()
    assert trace_context() == {}
    worker = PipelineWorker(Pipeline([FrameProcessor()]))
    start_conversation(worker, {})
    assert worker.turn_trace_observer is None
    assert spans.get_finished_spans() == ()
