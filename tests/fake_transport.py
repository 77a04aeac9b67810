"""A Pipecat transport for tests: a microphone fed from PCM, a speaker that records."""

import asyncio
import time
from typing import Any

from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    InputAudioRawFrame,
    OutputAudioRawFrame,
    OutputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
    StartFrame,
)
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import BaseTransport, TransportParams

from processors.pausable_output import PausableOutput

MIC_SAMPLE_RATE = 16000
MIC_CHUNK_SECS = 0.02


class Microphone(BaseInputTransport):
    """Sends queued speech at real-time pace, and silence between utterances."""

    def __init__(self, params: TransportParams) -> None:
        super().__init__(params)
        self._pending = bytearray()
        self._task: asyncio.Task | None = None

    def say(self, pcm: bytes) -> float:
        """Queue 16 kHz PCM16 speech; return when (monotonic) it will have been sent."""
        backlog = len(self._pending) / 2 / MIC_SAMPLE_RATE
        self._pending += pcm
        return time.monotonic() + backlog + len(pcm) / 2 / MIC_SAMPLE_RATE

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)
        if self._task is None:
            self._task = self.create_task(self._feed(), "fake_microphone")

    async def stop(self, frame: EndFrame) -> None:
        await self._halt()
        await super().stop(frame)

    async def cancel(self, frame: CancelFrame) -> None:
        await self._halt()
        await super().cancel(frame)

    async def _halt(self) -> None:
        if self._task is not None:
            await self.cancel_task(self._task)
            self._task = None

    async def _feed(self) -> None:
        chunk_bytes = int(MIC_SAMPLE_RATE * MIC_CHUNK_SECS) * 2
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            chunk = bytes(self._pending[:chunk_bytes])
            del self._pending[:chunk_bytes]
            chunk += bytes(chunk_bytes - len(chunk))
            await self.push_audio_frame(InputAudioRawFrame(chunk, MIC_SAMPLE_RATE, 1))
            next_at += MIC_CHUNK_SECS
            await asyncio.sleep(max(0.0, next_at - loop.time()))


class RecordingSpeaker(BaseOutputTransport):
    """Plays audio in real time, recording each chunk with the moment it was written."""

    def __init__(self, params: TransportParams) -> None:
        super().__init__(params)
        self.played: list[tuple[float, bytes]] = []
        self.messages: list[Any] = []

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        self.played.append((time.monotonic(), frame.audio))
        await asyncio.sleep(len(frame.audio) / 2 / frame.sample_rate)
        return True

    async def send_message(
        self, frame: OutputTransportMessageFrame | OutputTransportMessageUrgentFrame
    ) -> None:
        """Keep what would reach the client (RTVI messages)."""
        self.messages.append(frame.message)

    def audio_between(self, start: float = 0.0, end: float = float("inf")) -> bytes:
        """Everything written in a time window."""
        return b"".join(audio for at, audio in self.played if start <= at < end)

    def first_write_after(self, moment: float) -> float | None:
        """When the first audio was written after a moment, if any was."""
        return next((at for at, _ in self.played if at >= moment), None)


class Speaker(PausableOutput, RecordingSpeaker):
    """The speaker, pausable like the bot's LiveKit output."""


class FakeTransport(BaseTransport):
    """Both ends of a fake call."""

    def __init__(self) -> None:
        super().__init__()
        params = TransportParams(audio_in_enabled=True, audio_out_enabled=True)
        self.microphone = Microphone(params)
        self.speaker = Speaker(params)

    def input(self) -> Microphone:
        return self.microphone

    def output(self) -> Speaker:
        return self.speaker
