"""An output transport whose audio can pause where the listener is and play on later.

`PausePlayoutFrame` stops the audio at once: what the device or network buffer holds
but has not played yet is taken back, and the writer waits. `ResumePlayoutFrame` plays
that audio again from `BACKUP_S` before the point the listener reached, then carries on
with the rest of the reply, so nothing is skipped and at most `BACKUP_S` is repeated.
An `InterruptionFrame` drops all of it, as usual.

A transport with its own playout buffer says how much of what it was given is still
unplayed (`_unplayed_seconds`) and how to take it back (`_drop_unplayed`).
"""

import asyncio

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    Frame,
    InterruptionFrame,
    OutputAudioRawFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.transports.base_output import BaseOutputTransport

from processors.playout_frames import PausePlayoutFrame, ResumePlayoutFrame

BACKUP_S = 0.3
# Audio kept for a replay: the backup plus the most a playout buffer may hold.
HISTORY_S = 1.5


class PausableOutput(BaseOutputTransport):
    """Pauses and resumes the bot's audio on `PausePlayoutFrame`/`ResumePlayoutFrame`."""

    def __init__(self, *args, **kwargs) -> None:
        """Initialize the output; arguments go to the transport."""
        super().__init__(*args, **kwargs)
        self._playing = asyncio.Event()
        self._playing.set()
        self._write_lock = asyncio.Lock()
        self._history = bytearray()
        self._replay = bytearray()
        self._generation = 0

    @property
    def paused(self) -> bool:
        """Whether the audio is paused."""
        return not self._playing.is_set()

    def _unplayed_seconds(self) -> float:
        """Audio written but not played yet (the transport's own buffer)."""
        return 0.0

    def _drop_unplayed(self) -> None:
        """Discard what the transport's own buffer has not played yet."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Pause, resume or forget before the transport handles the frame."""
        if isinstance(frame, PausePlayoutFrame):
            self._pause()
        elif isinstance(frame, ResumePlayoutFrame):
            self._resume()
        elif isinstance(frame, InterruptionFrame):
            self._forget()
        await super().process_frame(frame, direction)

    async def push_frame(
        self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM
    ) -> None:
        """A new reply starts with no history to back up into."""
        if isinstance(frame, BotStartedSpeakingFrame) and direction == FrameDirection.DOWNSTREAM:
            self._history.clear()
        await super().push_frame(frame, direction)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        """Write the frame once playing, after any audio owed from a pause."""
        generation = self._generation
        await self._playing.wait()
        if generation != self._generation:
            return False  # interrupted while paused: this audio is no longer wanted
        async with self._write_lock:
            await self._write_replay()
            written = await super().write_audio_frame(frame)
            if written:
                self._remember(frame.audio)
            return written

    def _pause(self) -> None:
        if self.paused:
            return
        self._playing.clear()
        unplayed = self._bytes(self._unplayed_seconds())
        self._drop_unplayed()
        heard_end = max(0, len(self._history) - unplayed)
        start = max(0, heard_end - self._bytes(BACKUP_S))
        self._replay = self._history[start:] + self._replay
        del self._history[start:]

    def _resume(self) -> None:
        if not self.paused:
            return
        self._playing.set()
        if self._replay:
            self.create_task(self._write_owed(), "replay")

    def _forget(self) -> None:
        self._generation += 1
        self._replay.clear()
        self._history.clear()
        self._playing.set()

    async def _write_owed(self) -> None:
        async with self._write_lock:
            await self._write_replay()

    async def _write_replay(self) -> None:
        replay, self._replay = self._replay, bytearray()
        chunk = self.audio_chunk_size
        for start in range(0, len(replay), chunk):
            audio = bytes(replay[start : start + chunk])
            frame = OutputAudioRawFrame(audio, self.sample_rate, self._params.audio_out_channels)
            if not await super().write_audio_frame(frame):
                return
            self._remember(audio)

    def _remember(self, audio: bytes) -> None:
        self._history += audio
        excess = len(self._history) - self._bytes(HISTORY_S)
        if excess > 0:
            del self._history[:excess]

    def _bytes(self, seconds: float) -> int:
        """Whole samples of output audio in a duration, as bytes."""
        frame_bytes = 2 * self._params.audio_out_channels
        return int(seconds * self.sample_rate) * frame_bytes
