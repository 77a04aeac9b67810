"""A VAD processor whose stop frames say how long the user has really been silent.

Pipecat stamps `VADUserStoppedSpeakingFrame.stop_secs` with the configured pause, and
everything downstream (the turn metrics, the STT's TTFB) takes `timestamp - stop_secs`
as the end of the user's speech. Silero lets go of speech a window or two late, so the
real silence is longer: this processor puts the silence the analyzer measured in
`stop_secs` instead, so that instant is when the user's last voiced audio arrived.
Likewise a start carries, as `start_secs`, the time since the input audio's first
voiced sound (`VoiceOnset`): Silero misses a word's first sounds ("St-" in "Stop"),
which the user heard themselves say.
"""

import time
from typing import Any

from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.audio.vad_processor import VADProcessor
from pipecat.processors.frame_processor import FrameDirection

from processors.pausing_vad import PausingSileroVADAnalyzer
from processors.voice_onset import NS_PER_S, VoiceOnset


class MeasuredStopVADProcessor(VADProcessor):
    """`VADProcessor` whose stops and starts carry measured `stop_secs` and `start_secs`."""

    def __init__(self, *, vad_analyzer: PausingSileroVADAnalyzer, **kwargs: Any) -> None:
        """Initialize the processor; arguments as `VADProcessor`."""
        super().__init__(vad_analyzer=vad_analyzer, **kwargs)
        self._analyzer = vad_analyzer
        self._onset = VoiceOnset()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Note the input audio's loudness, then analyze it as `VADProcessor` does."""
        if isinstance(frame, InputAudioRawFrame):
            self._onset.add(time.monotonic_ns(), frame.audio, frame.sample_rate, frame.num_channels)
        await super().process_frame(frame, direction)

    async def broadcast_frame(self, frame_cls: type[Frame], **kwargs: Any) -> None:
        """Broadcast a frame; a VAD stop or start with the silence or voice measured."""
        if frame_cls is VADUserStoppedSpeakingFrame:
            kwargs["stop_secs"] = round(self._analyzer.silence_secs, 3)
        elif frame_cls is VADUserStartedSpeakingFrame:
            now = time.monotonic_ns()
            confirmed = now - int(kwargs.get("start_secs", 0.0) * NS_PER_S)
            kwargs["start_secs"] = round((now - self._onset.onset(confirmed)) / NS_PER_S, 3)
        await super().broadcast_frame(frame_cls, **kwargs)
