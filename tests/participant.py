"""A LiveKit participant for end-to-end tests: speaks from PCM, records what it hears."""

import asyncio
import bisect
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field

import numpy as np
from livekit import rtc

from bot.native_logs import NATIVE_LOG_HOLD

MIC_RATE = 16000
LISTEN_RATE = 24000
# A microphone hands each 10 ms of audio to WebRTC as it is captured, as a browser
# does. The SDK's queue (1 s by default) is off: any queue there fills up after the
# first late wake-up on a busy machine, and stays full, since it drains at exactly the
# pace it is fed; the listener would count that standing backlog as network delay.
FRAME_SECS = 0.01
QUEUE_MS = 0
# The RTVI protocol version the browser client (client-js 1.13) speaks.
RTVI_VERSION = "2.1.0"


@dataclass
class Participant:
    """Joins a room, publishes a microphone fed at real-time pace, records the bot.

    Like the browser client, it tells the bot (RTVI `client-ready`) once it plays the
    bot's audio: `plays_after_s` later than the track arrives, as a slow device would.
    """

    room: rtc.Room = field(default_factory=rtc.Room)
    plays_after_s: float = 0.0
    says_ready: bool = True
    heard: list[tuple[float, bytes]] = field(default_factory=list)
    # When (monotonic) the bot's audio track first reached this participant.
    track_arrived_at: float | None = None
    messages: list[dict] = field(default_factory=list)
    # Speech queued by `say` so far, and when each 10 ms frame of it went to WebRTC:
    # (monotonic time `capture_frame` returned, speech samples handed over by then).
    queued_samples: int = 0
    captured: list[tuple[float, int]] = field(default_factory=list)
    _pending: bytearray = field(default_factory=bytearray)
    _tasks: list[asyncio.Task] = field(default_factory=list)
    _listening: dict[str, asyncio.Task] = field(default_factory=dict)

    async def join(self, url: str, token: str) -> None:
        """Connect, publish the microphone and start listening."""

        @self.room.on("track_subscribed")
        def on_track(track: rtc.Track, *_: object) -> None:
            if track.kind == rtc.TrackKind.KIND_AUDIO:
                self.track_arrived_at = self.track_arrived_at or time.monotonic()
                # The stream keeps audio from its creation on: made here, not in the task,
                # a busy loop cannot start it after a short greeting has gone by.
                stream = rtc.AudioStream(track, sample_rate=LISTEN_RATE, num_channels=1)
                plays_from = time.monotonic() + self.plays_after_s
                self._listening[track.sid] = asyncio.create_task(self._listen(stream, plays_from))
                self._tasks.append(self._listening[track.sid])
                if self.says_ready:
                    self._tasks.append(asyncio.create_task(self._say_ready()))

        @self.room.on("track_unsubscribed")
        def on_track_gone(track: rtc.Track, *_: object) -> None:
            # A later track may reuse the same receiver: its stream must not hear that one.
            listening = self._listening.pop(track.sid, None)
            if listening is not None:
                listening.cancel()

        @self.room.on("data_received")
        def on_data(packet: rtc.DataPacket) -> None:
            try:
                self.messages.append(json.loads(packet.data))
            except ValueError:
                pass

        # A person's browser joins on their own machine: the bench's listeners share the
        # bots' cores, so they skip the native log records a join makes, as the bot does.
        with NATIVE_LOG_HOLD.connecting():
            await self.room.connect(url, token)
            source = rtc.AudioSource(MIC_RATE, 1, queue_size_ms=QUEUE_MS)
            track = rtc.LocalAudioTrack.create_audio_track("microphone", source)
            options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
            await self.room.local_participant.publish_track(track, options)
        self._tasks.append(asyncio.create_task(self._speak(source)))

    def say(self, pcm: bytes) -> float:
        """Queue 16 kHz speech; return when (monotonic) it will have been sent."""
        backlog = len(self._pending) / 2 / MIC_RATE
        self._pending += pcm
        self.queued_samples += len(pcm) // 2
        return time.monotonic() + backlog + len(pcm) / 2 / MIC_RATE

    def sent_at(self, sample: int) -> float | None:
        """When the frame holding speech sample `sample` (counted over all `say`s) was sent."""
        index = bisect.bisect_right(self.captured, sample, key=lambda capture: capture[1])
        return self.captured[index][0] if index < len(self.captured) else None

    def longest_send_gap(self, since_sample: int) -> float:
        """The longest wait between two frames of speech sent after sample `since_sample`.

        10 ms while the test process keeps pace; longer when it went unscheduled,
        which the bot rightly hears as a pause in the speech.
        """
        times = [at for at, sent in self.captured if sent > since_sample]
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)

    def audio(self, since: float = 0.0, until: float = float("inf")) -> bytes:
        """What was heard in a window, 24 kHz mono PCM16."""
        return b"".join(a for at, a in self.heard if since <= at < until)

    def first_loud_at(self, since: float) -> float | None:
        """When the first frame with sound (RMS over 300) was heard at or after `since`."""
        for at, pcm in self.heard:
            samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)
            if at >= since and samples.size and float(np.sqrt(np.mean(samples**2))) > 300:
                return at
        return None

    async def leave(self) -> None:
        """Disconnect and stop every task."""
        for task in self._tasks:
            task.cancel()
        await self.room.disconnect()

    async def _speak(self, source: rtc.AudioSource) -> None:
        samples = int(MIC_RATE * FRAME_SECS)
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        sent = 0
        while True:
            chunk = bytes(self._pending[: samples * 2])
            del self._pending[: samples * 2]
            speech = len(chunk) // 2
            chunk += bytes(samples * 2 - len(chunk))
            await source.capture_frame(rtc.AudioFrame(chunk, MIC_RATE, 1, samples))
            if speech:
                sent += speech
                self.captured.append((time.monotonic(), sent))
            next_at += FRAME_SECS
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    async def _listen(self, stream: rtc.AudioStream, plays_from: float) -> None:
        """Record what arrives from `plays_from` (monotonic) on: before that nothing plays."""
        async for event in stream:
            if (now := time.monotonic()) >= plays_from:
                self.heard.append((now, bytes(event.frame.data)))

    async def _say_ready(self) -> None:
        """Tell the bot, once playing, that its audio is heard, as the browser client does."""
        await asyncio.sleep(self.plays_after_s)
        ready = {
            "label": "rtvi-ai",
            "type": "client-ready",
            "id": uuid.uuid4().hex,
            "data": {"version": RTVI_VERSION, "about": {"library": "tests.participant"}},
        }
        await self.room.local_participant.publish_data(json.dumps(ready), reliable=True)


def is_whole_reply(heard: list[int], expected: list[int]) -> bool:
    """Whether what was heard is the reply, word for word, or all of it but one word.

    After seconds of bot silence the receiving WebRTC stack now and then distorts the
    first ~100 ms of audio (a beat of up to 1.8 times the sent level, seen about once in
    ten runs of this module), which can garble the first beep. Far more rarely, on a
    starved machine, a beep mid-reply arrives too broken to decode (once in four full
    suites; the bot's log showed the whole reply written out, unpaused). Every other
    word must still arrive, in order, the last one included, and nothing else.
    """
    return heard == expected or any(
        heard == expected[:lost] + expected[lost + 1 :] for lost in range(len(expected) - 1)
    )
