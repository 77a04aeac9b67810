"""Speech synthesis with Piper, behind the Chatterbox protocol (`Synthesizer`).

Piper makes a sentence at a time; each is resampled to the protocol's 24 kHz and sent
as soon as it is made, in small pieces.
"""

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from engines.threaded import stream_in_thread

SAMPLE_RATE = 24000
PIECE_SECS = 0.1


class PiperSynthesizer:
    """A Piper voice (.onnx with its .onnx.json) on the CPU."""

    sample_rate = SAMPLE_RATE

    def __init__(self, voice_path: Path) -> None:
        from piper import PiperVoice

        self._voice = PiperVoice.load(str(voice_path))
        self._busy = asyncio.Lock()

    async def synthesize(
        self, text: str, voice: str, options: dict[str, Any]
    ) -> AsyncIterator[bytes]:
        """24 kHz PCM16 mono of the text, sentence by sentence as Piper makes it."""
        resampler: soxr.ResampleStream | None = None

        def sentences() -> Iterator[tuple[int, bytes]]:
            for chunk in self._voice.synthesize(text):
                yield chunk.sample_rate, chunk.audio_int16_bytes

        piece = int(PIECE_SECS * SAMPLE_RATE) * 2
        async with self._busy:
            async for rate, pcm in stream_in_thread(sentences):
                samples = np.frombuffer(pcm, dtype=np.int16)
                if rate != SAMPLE_RATE:
                    resampler = resampler or soxr.ResampleStream(rate, SAMPLE_RATE, 1, "int16")
                    samples = resampler.resample_chunk(samples)
                audio = samples.tobytes()
                for start in range(0, len(audio), piece):
                    yield audio[start : start + piece]
