"""Keeps conversation text out of exported spans: only attributes known to be safe leave.

Pipecat's tracing records what was said: the STT span's `transcript`, the LLM span's
`input` (the whole context as JSON), `output` and `gen_ai.system_instructions`, the TTS
span's `text`, and the participant's identity as `user_id`. A deny-list would miss the
next attribute a Pipecat release adds, so this works the other way round: an attribute
leaves only if its key is listed here, or sits under a prefix of numeric settings and
holds a number or a boolean. Exception messages and status descriptions, which may quote
a request, are dropped too; the exception's type stays.
"""

from collections.abc import Sequence

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Link, Status
from opentelemetry.util.types import Attributes, AttributeValue

# Keys whose values are never conversation text: names, codes, counts, durations, flags.
SAFE_ATTRIBUTES = frozenset(
    {
        # Conversation and turns (Pipecat's TurnTraceObserver).
        "conversation.id",
        "conversation.type",
        "turn.number",
        "turn.type",
        "turn.duration_seconds",
        "turn.was_interrupted",
        "turn.ended_by_conversation_end",
        "turn.user_bot_latency_seconds",
        # Services (Pipecat's traced_stt, traced_llm, traced_tts).
        "gen_ai.provider.name",
        "gen_ai.request.model",
        "gen_ai.operation.name",
        "gen_ai.output.type",
        "stream",
        "tool_count",
        "vad_enabled",
        "is_final",
        "language",
        "voice_id",
        "stt.incomplete",
        "tts.interrupted",
        "metrics.ttfb",
        "metrics.character_count",
        "metrics.audio_seconds",
        # Ours: the output span; the session server's /connect span (FastAPI's, plus the
        # session id). Never `url.path` or `client.address`.
        "output.interrupted",
        "http.request.method",
        "http.route",
        "http.response.status_code",
        "error.type",
        "session.id",
    }
)
# Under these prefixes only numbers and booleans pass: token counts, temperature, seed...
NUMERIC_PREFIXES = ("gen_ai.usage.", "gen_ai.request.", "settings.", "param.", "extra.")
SAFE_EVENT_ATTRIBUTES = frozenset({"exception.type", "exception.escaped"})


def _is_number_or_flag(value: AttributeValue) -> bool:
    return isinstance(value, (bool, int, float))


def safe_attributes(attributes: Attributes) -> dict[str, AttributeValue]:
    """The attributes that may leave the process."""
    return {
        key: value
        for key, value in (attributes or {}).items()
        if key in SAFE_ATTRIBUTES
        or (key.startswith(NUMERIC_PREFIXES) and _is_number_or_flag(value))
    }


def _only(attributes: Attributes, allowed: frozenset[str]) -> dict[str, AttributeValue]:
    return {k: v for k, v in (attributes or {}).items() if k in allowed}


def redacted(span: ReadableSpan) -> ReadableSpan:
    """A copy of `span` with every unsafe attribute and message removed."""
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=safe_attributes(span.attributes),
        events=[
            Event(e.name, _only(e.attributes, SAFE_EVENT_ATTRIBUTES), e.timestamp)
            for e in span.events
        ],
        links=[Link(link.context, safe_attributes(link.attributes)) for link in span.links],
        kind=span.kind,
        status=Status(span.status.status_code),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class RedactingSpanExporter(SpanExporter):
    """Wraps the real exporter, so nothing reaches the wire before it is redacted."""

    def __init__(self, exporter: SpanExporter) -> None:
        """Redact for `exporter`."""
        self._exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export redacted copies of `spans`."""
        return self._exporter.export([redacted(span) for span in spans])

    def shutdown(self) -> None:
        """Shut the wrapped exporter down."""
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the wrapped exporter."""
        return self._exporter.force_flush(timeout_millis)
