"""An `output` span per stretch of bot speech, beside Pipecat's STT, LLM and TTS spans."""

from typing import Any

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, Span, set_span_in_context
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    InterruptionFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.processors.frame_processor import FrameDirection
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.utils.tracing.turn_trace_observer import TurnTraceObserver


class OutputSpanObserver(BaseObserver):
    """Records, as a child of the current turn's span, how long the bot's audio went out.

    Pipecat's turn tracing times the services that make the reply but not the output
    transport that plays it; this span runs from the transport's
    `BotStartedSpeakingFrame` to its `BotStoppedSpeakingFrame`, with
    `output.interrupted` set when the user cut the bot off. Speech outside any turn
    (there is none in practice: the greeting belongs to the first) gets no span.
    """

    def __init__(self, *, turns: TurnTraceObserver, **kwargs: Any) -> None:
        """Initialize the observer.

        Args:
            turns: The worker's turn tracer, whose current turn parents each span.
            **kwargs: Passed to `BaseObserver`.
        """
        super().__init__(**kwargs)
        self._turns = turns
        self._tracer = trace.get_tracer("voice_agent.output")
        self._span: Span | None = None

    async def on_push_frame(self, data: FramePushed) -> None:
        """Open the span when the bot starts speaking, end it when it stops."""
        frame = data.frame
        if isinstance(frame, InterruptionFrame):
            if self._span is not None:
                self._span.set_attribute("output.interrupted", True)
            return
        if isinstance(frame, EndFrame | CancelFrame):
            self._end()
            return
        if not (
            isinstance(data.source, BaseOutputTransport)
            and data.direction == FrameDirection.DOWNSTREAM
        ):
            return
        if isinstance(frame, BotStartedSpeakingFrame) and self._span is None:
            turn = self._turns.get_current_turn_context()
            if turn is not None:
                parent = set_span_in_context(NonRecordingSpan(turn))
                self._span = self._tracer.start_span("output", context=parent)
                self._span.set_attribute("output.interrupted", False)
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._end()

    async def cleanup(self) -> None:
        """End a span still open when the pipeline is torn down."""
        self._end()
        await super().cleanup()

    def _end(self) -> None:
        if self._span is not None:
            self._span.end()
            self._span = None
