"""Counts the errors the engine services report, by engine and kind, for Prometheus."""

from typing import Any

from pipecat.frames.frames import ErrorFrame
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.services.llm_service import LLMService
from pipecat.services.stt_service import STTService
from pipecat.services.tts_service import TTSService

from services.engine_metrics import ENGINE_ERRORS, Engine, failure_kind


def engine_of(processor: object) -> Engine | None:
    """Which engine a processor is the service of, if any."""
    if isinstance(processor, STTService):
        return "stt"
    if isinstance(processor, LLMService):
        return "llm"
    if isinstance(processor, TTSService):
        return "tts"
    return None


class EngineErrorObserver(BaseObserver):
    """Watches every `ErrorFrame` once, where it starts, and counts those of an engine.

    Counting the frames rather than each service's failure paths keeps the count in
    one place, and agrees with what the client is shown: one error per failed step.
    """

    def __init__(self, **kwargs: Any) -> None:
        """Initialize the observer; only a frame's first push is of interest."""
        super().__init__(observe_every_push=False, **kwargs)

    async def on_push_frame(self, data: FramePushed) -> None:
        """Count an engine's error frame."""
        frame = data.frame
        if not isinstance(frame, ErrorFrame):
            return
        engine = engine_of(frame.processor or data.source)
        if engine is not None:
            kind = failure_kind(frame.exception, frame.category)
            ENGINE_ERRORS.labels(engine=engine, kind=kind).inc()
