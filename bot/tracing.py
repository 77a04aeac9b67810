"""OpenTelemetry traces: one trace per conversation, from the server's /connect to the last turn.

Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set: then no provider, exporter or thread is
created and Pipecat's tracing stays disabled. On, the session server and every bot
export their spans over OTLP/HTTP to `{endpoint}/v1/traces`, stripped of conversation
text unless `LOG_TRANSCRIPTS=true` (`bot/span_redaction.py`). The server hands the
/connect span's W3C trace context to the bot with its room (`trace_context()`), and the
bot opens its conversation span as that span's child (`start_conversation()`), so
Pipecat's turn spans and their STT, LLM and TTS children land in the same trace.
"""

from typing import TYPE_CHECKING

from opentelemetry import context, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from bot.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter
    from pipecat.pipeline.worker import PipelineWorker

# Longest an export may take; a bot flushes while its supervisor's stop grace runs.
EXPORT_TIMEOUT_S = 3.0
# Only `traceparent` and `tracestate` cross between processes, never baggage.
_PROPAGATOR = TraceContextTextMapPropagator()


def tracing_enabled(settings: Settings) -> bool:
    """Whether spans are recorded and exported."""
    return settings.otel_exporter_otlp_endpoint is not None


def span_exporter(settings: Settings) -> "SpanExporter":
    """The OTLP/HTTP exporter, behind the redaction unless transcripts may be recorded."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    from bot.span_redaction import RedactingSpanExporter

    exporter = OTLPSpanExporter(
        endpoint=f"{settings.otel_exporter_otlp_endpoint}/v1/traces", timeout=EXPORT_TIMEOUT_S
    )
    return exporter if settings.log_transcripts else RedactingSpanExporter(exporter)


def setup_tracing(settings: Settings, process: str) -> bool:
    """Install the global tracer provider when tracing is configured; whether it is on.

    Args:
        settings: The process's settings.
        process: `server` or `bot`, recorded on every span as `voice_agent.process`.
    """
    if not tracing_enabled(settings):
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(
        resource=Resource(
            {"service.name": settings.otel_service_name, "voice_agent.process": process}
        )
    )
    provider.add_span_processor(BatchSpanProcessor(span_exporter(settings)))
    trace.set_tracer_provider(provider)
    return True


def shutdown_tracing() -> None:
    """Export the spans still buffered, then stop; nothing to do when tracing is off."""
    from opentelemetry.sdk.trace import TracerProvider

    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()


def trace_context() -> dict[str, str]:
    """The current span as a W3C carrier (`traceparent`, `tracestate`); empty if none."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier


def start_conversation(worker: "PipelineWorker", parent: dict[str, str]) -> None:
    """Open the worker's conversation span now, as a child of the span `parent` carries.

    Pipecat would open it when the pipeline starts, under whatever context is current
    in that task; opening it here makes the parent explicit. Does nothing when the
    worker does not trace.
    """
    turns = worker.turn_trace_observer
    if turns is None:
        return
    token = context.attach(_PROPAGATOR.extract(parent))
    try:
        turns.start_conversation_tracing()
    finally:
        context.detach(token)
