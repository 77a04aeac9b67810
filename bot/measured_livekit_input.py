"""LiveKit input that reports the waits of audio in WebRTC that the pipeline never sees.

The receiving WebRTC stack holds each packet in its jitter buffer before playing it
out to the SDK: 20-40 ms on a quiet network, 100 ms and more when packets arrive
unevenly. WebRTC's own statistics count it (`jitterBufferDelay` over
`jitterBufferEmittedCount`, both running totals), so at each pause the VAD reports
this input reads them for the user's track and sends the average wait since its last
reading downstream in a `TransportDelayFrame`, with the codec's framing both ways:
Opus carries 20 ms frames, so the user's last sound waited half of one on average to
be sent, and the bot's first sound waits for its whole frame to fill, after the
AudioSource hands it over at its next 10 ms tick. The listener's own jitter buffer is
out of the bot's sight; it is taken to hold the bot's audio as long as the bot's held
the user's (the same kind of receiver, the same path the other way).
"""

from pipecat.frames.frames import Frame, VADUserStoppedSpeakingFrame
from pipecat.processors.frame_processor import FrameDirection
from pipecat.transports.livekit.transport import LiveKitInputTransport

from processors.transport_delay_frame import TransportDelayFrame

OPUS_FRAME_S = 0.02
AUDIO_SOURCE_TICK_S = 0.01


class JitterBufferMeter:
    """Average jitter-buffer wait between two readings of WebRTC's running totals."""

    def __init__(self) -> None:
        """Start with no reading."""
        self._delay_s = 0.0
        self._emitted = 0

    def read(self, delay_s: float, emitted: int) -> float | None:
        """The mean wait (s) of the samples emitted since the last reading, if any."""
        if emitted < self._emitted:  # a new track: its totals start over
            self._delay_s, self._emitted = 0.0, 0
        waited, count = delay_s - self._delay_s, emitted - self._emitted
        self._delay_s, self._emitted = delay_s, emitted
        return waited / count if count > 0 else None


class MeasuredLiveKitInput(LiveKitInputTransport):
    """`LiveKitInputTransport` that reports the unseen waits at each pause."""

    def __init__(self, *args, **kwargs) -> None:
        """Initialize the input; arguments as `LiveKitInputTransport`."""
        super().__init__(*args, **kwargs)
        self._meters: dict[str, JitterBufferMeter] = {}

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Measure the jitter buffer when the VAD's pause comes back up the pipeline."""
        await super().process_frame(frame, direction)
        if isinstance(frame, VADUserStoppedSpeakingFrame) and direction == FrameDirection.UPSTREAM:
            self.create_task(self._report(), f"{self}::jitter_buffer")

    async def _report(self) -> None:
        # Pipecat 1.14 has no public handle on the subscribed tracks.
        waits = []
        for participant, track in list(self._client._audio_tracks.items()):
            for stats in await track.get_stats():
                if stats.HasField("inbound_rtp"):
                    inbound = stats.inbound_rtp.inbound
                    meter = self._meters.setdefault(participant, JitterBufferMeter())
                    wait = meter.read(
                        inbound.jitter_buffer_delay, inbound.jitter_buffer_emitted_count
                    )
                    if wait is not None:
                        waits.append(wait)
        if waits:
            await self.push_frame(transport_delays(max(waits)))


def transport_delays(jitter_buffer_s: float) -> TransportDelayFrame:
    """The unseen waits both ways, given how long the user's audio sat in the jitter buffer."""
    return TransportDelayFrame(
        uplink_s=jitter_buffer_s + OPUS_FRAME_S / 2,
        downlink_s=AUDIO_SOURCE_TICK_S / 2 + OPUS_FRAME_S + jitter_buffer_s,
    )
