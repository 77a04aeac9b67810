"""A VAD processor whose stop frames say how long the user has really been silent.

Pipecat stamps `VADUserStoppedSpeakingFrame.stop_secs` with the configured pause, and
everything downstream (the turn metrics, the STT's TTFB) takes `timestamp - stop_secs`
as the end of the user's speech. Silero lets go of speech a window or two late, so the
real silence is longer: this processor puts the silence the analyzer measured in
`stop_secs` instead, so that instant is when the user's last voiced audio arrived.
Likewise a start carries, as `start_secs`, the time since the input audio's first
voiced sound (`VoiceOnset`): Silero misses a word's first sounds ("St-" in "Stop"),
which the user heard themselves say.

It also reports sounds as they begin and end (`UserSoundStartedFrame`,
`UserSoundStoppedFrame`), before the VAD has decided whether they are speech, so the
bot's audio can pause the moment the user makes one.
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
from processors.sound_frames import UserSoundStartedFrame, UserSoundStoppedFrame
from processors.sound_span import SoundSpan
from processors.voice_onset import NS_PER_S, VOICED_DBFS, VoiceOnset


class MeasuredStopVADProcessor(VADProcessor):
    """`VADProcessor` with measured `stop_secs` and `start_secs`, and sound frames."""

    def __init__(
        self,
        *,
        vad_analyzer: PausingSileroVADAnalyzer,
        sound_min_dbfs: float = VOICED_DBFS,
        **kwargs: Any,
    ) -> None:
        """Initialize the processor.

        Args:
            vad_analyzer: The VAD, as for `VADProcessor`.
            sound_min_dbfs: How loud a sound must be to begin (see `VoiceOnset`).
            **kwargs: Passed to `VADProcessor`.
        """
        super().__init__(vad_analyzer=vad_analyzer, **kwargs)
        self._analyzer = vad_analyzer
        self._onset = VoiceOnset(min_dbfs=sound_min_dbfs)
        self._sound = SoundSpan()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Analyze audio as `VADProcessor` does, and report where sounds begin and end."""
        if not isinstance(frame, InputAudioRawFrame):
            await super().process_frame(frame, direction)
            return
        loud = self._onset.add(
            time.monotonic_ns(), frame.audio, frame.sample_rate, frame.num_channels
        )
        await super().process_frame(frame, direction)
        event = self._sound.add(loud, voiced=self._analyzer.hears_voice)
        if event == "started":
            await self.push_frame(UserSoundStartedFrame(start_secs=self._sound.length_s))
        elif event == "stopped":
            await self.push_frame(UserSoundStoppedFrame(voiced=self._sound.voiced))

    async def broadcast_frame(self, frame_cls: type[Frame], **kwargs: Any) -> None:
        """Broadcast a frame; a VAD stop or start with the silence or voice measured."""
        if frame_cls is VADUserStoppedSpeakingFrame:
            kwargs["stop_secs"] = round(self._analyzer.silence_secs, 3)
        elif frame_cls is VADUserStartedSpeakingFrame:
            now = time.monotonic_ns()
            confirmed = now - int(kwargs.get("start_secs", 0.0) * NS_PER_S)
            kwargs["start_secs"] = round((now - self._onset.onset(confirmed)) / NS_PER_S, 3)
        await super().broadcast_frame(frame_cls, **kwargs)
