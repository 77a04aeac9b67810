"""Speech recognition with faster-whisper, behind the Voxtral protocol (`Transcriber`).

Partial transcripts while the user speaks come from re-decoding the audio so far every
`partial_every_s`; only words two decodes agree on are revealed (local agreement), so a
partial rarely has to be taken back. Decoding runs in a worker thread, one at a time.
"""

import asyncio
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
BYTES_PER_SECOND = SAMPLE_RATE * 2


class WhisperTranscriber:
    """A faster-whisper model on the CPU."""

    def __init__(self, model_dir: Path, *, threads: int = 2, partial_every_s: float = 0.7) -> None:
        from faster_whisper import WhisperModel

        self._model = WhisperModel(
            str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads
        )
        self._busy = asyncio.Lock()
        self.partial_every_s = partial_every_s

    def open_stream(self) -> "WhisperStream":
        """Start transcribing a new utterance."""
        return WhisperStream(self)

    async def transcribe(self, pcm: bytes) -> list[str]:
        """The words of 16 kHz PCM16 mono audio."""
        audio = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0
        async with self._busy:
            return await asyncio.to_thread(self._decode, audio)

    def _decode(self, audio: np.ndarray) -> list[str]:
        segments, _ = self._model.transcribe(
            audio,
            language="en",
            beam_size=1,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,
        )
        return " ".join(segment.text.strip() for segment in segments).split()


class WhisperStream:
    """One utterance: audio in, agreed words out as partials, the rest at the end."""

    def __init__(self, transcriber: WhisperTranscriber) -> None:
        self._transcriber = transcriber
        self._audio = bytearray()
        self._decoded_upto = 0
        self._previous: list[str] = []
        self._revealed: list[str] = []
        self._decoding: asyncio.Task[list[str]] | None = None

    async def feed(self, pcm: bytes) -> str:
        """Take audio; return words newly agreed on since the last call, maybe ""."""
        self._audio += pcm
        delta = ""
        if self._decoding is not None and self._decoding.done():
            delta = self._agree(self._decoding.result())
            self._decoding = None
        due = len(self._audio) - self._decoded_upto >= (
            self._transcriber.partial_every_s * BYTES_PER_SECOND
        )
        if self._decoding is None and due:
            self._decoded_upto = len(self._audio)
            self._decoding = asyncio.create_task(self._transcriber.transcribe(bytes(self._audio)))
        return delta

    async def finish(self) -> str:
        """Decode the whole utterance; return what was not revealed yet."""
        if self._decoding is not None:
            self._decoding.cancel()
            self._decoding = None
        words = await self._transcriber.transcribe(bytes(self._audio))
        # Revealed words stand (the protocol cannot take a delta back); the final decode
        # supplies the rest.
        return _joined(words[len(self._revealed) :], leading_space=bool(self._revealed))

    def _agree(self, words: list[str]) -> str:
        agreed = []
        for mine, theirs in zip(words, self._previous, strict=False):
            if mine != theirs:
                break
            agreed.append(mine)
        self._previous = words
        if len(agreed) <= len(self._revealed) or not _starts_with(agreed, self._revealed):
            return ""
        new = agreed[len(self._revealed) :]
        leading = bool(self._revealed)
        self._revealed = agreed
        return _joined(new, leading_space=leading)


def _starts_with(words: list[str], prefix: list[str]) -> bool:
    return words[: len(prefix)] == prefix


def _joined(words: list[str], *, leading_space: bool) -> str:
    if not words:
        return ""
    return (" " if leading_space else "") + " ".join(words)
