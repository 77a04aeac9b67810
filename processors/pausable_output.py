"""An output transport whose audio can pause where the listener is and play on later.

`PausePlayoutFrame` stops the audio at once: what the device or network buffer holds
but has not played yet is taken back, and the writer waits. `ResumePlayoutFrame` plays
that audio again from `BACKUP_S` before the point the listener reached, then carries on
with the rest of the reply, so nothing is skipped and at most `BACKUP_S` is repeated.
An `InterruptionFrame` drops all of it, as usual.

The bot's text goes on to the assistant aggregator word by word as its audio is played
(`processors/heard_text.py`), so after an interruption the LLM context holds only what
the listener heard.

A transport with its own playout buffer says how much of what it was given is still
unplayed (`_unplayed_seconds`) and how to take it back (`_drop_unplayed`).
"""

import asyncio

from pipecat.frames.frames import (
    AggregatedTextFrame,
    BotStartedSpeakingFrame,
    CancelFrame,
    EndFrame,
    Frame,
    InterruptionFrame,
    OutputAudioRawFrame,
    SystemFrame,
    TTSTextFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.transports.base_output import BaseOutputTransport

from processors.heard_text import HeardText
from processors.playout_frames import PausePlayoutFrame, ResumePlayoutFrame

BACKUP_S = 0.3
# Audio kept for a replay: the backup plus the most a playout buffer may hold.
HISTORY_S = 1.5
# How often held text is checked against the audio played once nothing is written.
HEARD_POLL_S = 0.02


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
        # Bytes along the output: the end of what was written, and the furthest heard.
        self._written = 0
        self._heard = 0
        self._text = HeardText()
        self._text_lock = asyncio.Lock()
        self._text_task: asyncio.Task | None = None

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
            await self._forget_unheard_text()
            await super().process_frame(frame, direction)
            # Only once the transport has dropped the queued audio: a writer woken
            # earlier would take the next old frame from its queue and play it.
            self._playing.set()
            return
        elif isinstance(frame, CancelFrame):
            await self._stop_text_task()
        await super().process_frame(frame, direction)

    async def stop(self, frame: EndFrame) -> None:
        """Once the last audio is written, pass on all the text still held."""
        await super().stop(frame)
        await self._stop_text_task()
        async with self._text_lock:
            for held in self._text.release_all():
                await super().push_frame(held)

    async def push_frame(
        self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM
    ) -> None:
        """Hold text until heard; a new reply starts with no history to back up into."""
        if direction == FrameDirection.DOWNSTREAM and not isinstance(
            frame, (SystemFrame, OutputAudioRawFrame)
        ):
            await self._hold_text(frame)
            return
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
        await self._pass_heard_text()
        return written

    def _pause(self) -> None:
        if self.paused:
            return
        self._playing.clear()
        unplayed = self._bytes(self._unplayed_seconds())
        self._drop_unplayed()
        self._heard = max(self._heard, self._written - unplayed)
        heard_end = max(0, len(self._history) - unplayed)
        start = max(0, heard_end - self._bytes(BACKUP_S))
        self._replay = self._history[start:] + self._replay
        # What goes back to the replay is written again: the output is that far back.
        self._written -= len(self._history) - start
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
        self._written += len(audio)
        self._history += audio
        excess = len(self._history) - self._bytes(HISTORY_S)
        if excess > 0:
            del self._history[:excess]

    async def _hold_text(self, frame: Frame) -> None:
        async with self._text_lock:
            if isinstance(frame, TTSTextFrame):
                self._text.add_text(frame, self._written)
            elif self._text.holding:
                self._text.hold(frame)
            else:
                await super().push_frame(frame)
            if isinstance(frame, AggregatedTextFrame) and frame.will_be_spoken:
                if not isinstance(frame, TTSTextFrame):
                    # A sentence about to be spoken: it may play before its text comes.
                    self._text.announce(frame, self._bytes(1.0))
        await self._pass_heard_text()
        if self._text.holding and self._text_task is None:
            self._text_task = self.create_task(self._watch_playout(), "heard_text")

    async def _pass_heard_text(self) -> None:
        """Pass on the text whose audio has been played by now."""
        if not self.paused:  # paused, the heard position was fixed when the pause began
            self._heard = max(self._heard, self._written - self._bytes(self._unplayed_seconds()))
        async with self._text_lock:
            for frame in self._text.heard(self._heard):
                await super().push_frame(frame)

    async def _watch_playout(self) -> None:
        """Pass text on as the transport plays its buffer, with nothing more written."""
        while self._text.holding:
            await asyncio.sleep(HEARD_POLL_S)
            await self._pass_heard_text()
        self._text_task = None

    async def _forget_unheard_text(self) -> None:
        """Pass on what was heard; what was not never reaches the context."""
        await self._pass_heard_text()
        await self._stop_text_task()
        async with self._text_lock:
            for frame in self._text.interrupt(self._written):
                await super().push_frame(frame)

    async def _stop_text_task(self) -> None:
        if self._text_task is not None:
            await self.cancel_task(self._text_task)
            self._text_task = None

    def _bytes(self, seconds: float) -> int:
        """Whole samples of output audio in a duration, as bytes."""
        frame_bytes = 2 * self._params.audio_out_channels
        return int(seconds * self.sample_rate) * frame_bytes
