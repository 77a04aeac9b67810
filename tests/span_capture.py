"""Spans recorded in memory, for tests: the process-wide tracer provider, installed once.

Pipecat's tracing and our server middleware take their tracers from the global
provider, which OpenTelemetry lets a process set only once.
"""

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bot.span_redaction import RedactingSpanExporter

_exporter: InMemorySpanExporter | None = None


def recorded_spans() -> InMemorySpanExporter:
    """The exporter every finished span reaches, redacted as in production; cleared."""
    global _exporter
    if _exporter is None:
        _exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(RedactingSpanExporter(_exporter)))
        trace.set_tracer_provider(provider)
    _exporter.clear()
    return _exporter


def attribute_text(spans: list[ReadableSpan]) -> str:
    """Every attribute key and value, event and status message of `spans`, as one text."""
    parts: list[str] = []
    for span in spans:
        parts.append(span.name)
        parts.extend(f"{k}={str(v)}" for k, v in (span.attributes or {}).items())
        for event in span.events:
            parts.append(event.name)
            parts.extend(f"{k}={str(v)}" for k, v in (event.attributes or {}).items())
        parts.append(span.status.description or "")
    return "\n".join(parts)
