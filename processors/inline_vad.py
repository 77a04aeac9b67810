"""Silero VAD analyzed on the event loop instead of a thread per audio frame.

Pipecat hands every audio frame to a worker thread, though Silero runs only once per
32 ms window and takes ~0.3 ms of CPU when it does; the hand-over and the wake-up back
on the loop cost more than the model for the frames in between.
"""

from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADState


class InlineSileroVADAnalyzer(SileroVADAnalyzer):
    """`SileroVADAnalyzer` whose analysis runs on the caller's thread."""

    async def analyze_audio(self, buffer: bytes) -> VADState:
        """The VAD state after `buffer`."""
        return self._run_analyzer(buffer)
