"""A VAD processor whose stop frames say how long the user has really been silent.

Pipecat stamps `VADUserStoppedSpeakingFrame.stop_secs` with the configured pause, and
everything downstream (the turn metrics, the STT's TTFB) takes `timestamp - stop_secs`
as the end of the user's speech. Silero lets go of speech a window or two late, so the
real silence is longer: this processor puts the silence the analyzer measured in
`stop_secs` instead, so that instant is when the user's last voiced audio arrived.
"""

from typing import Any

from pipecat.frames.frames import Frame, VADUserStoppedSpeakingFrame
from pipecat.processors.audio.vad_processor import VADProcessor

from processors.pausing_vad import PausingSileroVADAnalyzer


class MeasuredStopVADProcessor(VADProcessor):
    """`VADProcessor` whose stops carry the measured silence as `stop_secs`."""

    def __init__(self, *, vad_analyzer: PausingSileroVADAnalyzer, **kwargs: Any) -> None:
        """Initialize the processor; arguments as `VADProcessor`."""
        super().__init__(vad_analyzer=vad_analyzer, **kwargs)
        self._analyzer = vad_analyzer

    async def broadcast_frame(self, frame_cls: type[Frame], **kwargs: Any) -> None:
        """Broadcast a frame, a VAD stop with the silence measured since the last voice."""
        if frame_cls is VADUserStoppedSpeakingFrame:
            kwargs["stop_secs"] = round(self._analyzer.silence_secs, 3)
        await super().broadcast_frame(frame_cls, **kwargs)
