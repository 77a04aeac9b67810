"""LiveKit input that reports how long the user's audio sat in WebRTC's jitter buffer.

The receiving WebRTC stack holds each packet in its jitter buffer before playing it
out to the SDK: 20-40 ms on a quiet network, 100 ms and more when packets arrive
unevenly. The pipeline never sees that wait. WebRTC's own statistics count it
(`jitterBufferDelay` over `jitterBufferEmittedCount`, both running totals), so at each
pause the VAD reports this input reads them for the user's track and sends the
average wait since its last reading downstream as an `UplinkDelayFrame`.
"""

from pipecat.frames.frames import Frame, VADUserStoppedSpeakingFrame
from pipecat.processors.frame_processor import FrameDirection
from pipecat.transports.livekit.transport import LiveKitInputTransport

from processors.uplink_delay_frame import UplinkDelayFrame


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
    """`LiveKitInputTransport` that reports the user's jitter-buffer wait at each pause."""

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
            await self.push_frame(UplinkDelayFrame(seconds=max(waits)))
