"""The end of the line for microphone audio, once the user turn aggregation has it.

The transport's audio frames are pushed on by every processor that does not consume
them; past the user turn aggregation (whose stop strategy counts audio) nothing reads
them, so each further hop was per-frame work for nothing. It runs in direct mode (in
the task of the processor before it): its own queue and task were one more wake-up per
frame, for a processor that only forwards or drops.
"""

from pipecat.frames.frames import Frame, InputAudioRawFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor


class InputAudioEnd(FrameProcessor):
    """Drops `InputAudioRawFrame`; passes every other frame on."""

    def __init__(self) -> None:
        """Initialize the processor in direct mode."""
        super().__init__(enable_direct_mode=True)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Forward everything but microphone audio."""
        await super().process_frame(frame, direction)
        if not isinstance(frame, InputAudioRawFrame):
            await self.push_frame(frame, direction)
