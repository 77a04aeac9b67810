"""Pipecat's LiveKit transport: audio in at the pipeline's rate, audio out that can pause.

Pipecat asks LiveKit for 48 kHz audio in 10 ms frames and resamples every frame in
Python. Here the SDK hands over the pipeline's rate in frames of `frame_ms`: the
resampling happens in LiveKit's native code, and with 32 ms frames every processor
sees a third as many audio frames (`AUDIO_IN_FRAME_MS`). The input also reports how long
the user's audio waited in WebRTC's jitter buffer (`MeasuredLiveKitInput`).
"""

from livekit import rtc
from pipecat.frames.frames import InputAudioRawFrame
from pipecat.transports.livekit.transport import (
    LiveKitInputTransport,
    LiveKitOutputTransport,
    LiveKitParams,
    LiveKitTransport,
    LiveKitTransportClient,
    _ParticipantAudioMixer,
)

from bot.measured_livekit_input import MeasuredLiveKitInput
from bot.native_logs import NATIVE_LOG_HOLD
from processors.pausable_output import PausableOutput


class PausableLiveKitOutput(PausableOutput, LiveKitOutputTransport):
    """LiveKit output; a pause takes back what the rtc AudioSource has not played."""

    def _unplayed_seconds(self) -> float:
        source = self._client._audio_source  # Pipecat 1.14 has no public handle on it.
        return source.queued_duration if source else 0.0

    def _drop_unplayed(self) -> None:
        if self._client._audio_source:
            self._client._audio_source.clear_queue()


class _RatedClient(LiveKitTransportClient):
    """Subscribes to audio at the pipeline's rate, mono, in frames of `frame_ms`."""

    def __init__(self, *args: object, sample_rate: int, frame_ms: int) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.sample_rate = sample_rate
        self.frame_ms = frame_ms

    async def connect(self) -> None:  # type: ignore[override]  # theirs is retry-wrapped
        """Join and publish, without LiveKit's native log records (`bot/native_logs.py`)."""
        with NATIVE_LOG_HOLD.connecting():
            await super().connect()

    async def _async_on_track_subscribed(
        self,
        track: rtc.Track,
        publication: rtc.RemoteTrackPublication,
        participant: rtc.RemoteParticipant,
    ) -> None:
        if track.kind != rtc.TrackKind.KIND_AUDIO:
            await super()._async_on_track_subscribed(track, publication, participant)
            return
        # As Pipecat 1.14 does, but with the stream's rate and frame size.
        assert self._task_manager is not None
        await self._close_audio_stream(participant.identity)
        self._audio_tracks[participant.identity] = track
        stream = rtc.AudioStream(
            track, sample_rate=self.sample_rate, num_channels=1, frame_size_ms=self.frame_ms
        )
        task = self._task_manager.create_task(
            self._process_audio_stream(stream, participant.identity),
            f"{self}::_process_audio_stream",
        )
        self._audio_streams[participant.identity] = (stream, task)
        await self._callbacks.on_audio_track_subscribed(participant.identity)


class _RatedInput(MeasuredLiveKitInput):
    """Mixes participants in chunks of the stream's frame size (Pipecat's are 10 ms).

    Each mixed frame is pushed on at once: Pipecat queues it for a task that, with no
    input filter (the VAD is a processor of its own), only pushes it on, a task
    wake-up and on Python 3.11 a `wait_for` task per frame.
    """

    def __init__(self, *args: object, frame_ms: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._frame_ms = frame_ms

    async def _push_mixed_audio(self, audio_frame: rtc.AudioFrame, participant_id: str) -> None:
        if not self._mixer:
            self._mixer = _ParticipantAudioMixer(
                sample_rate=audio_frame.sample_rate,
                num_channels=audio_frame.num_channels,
                chunk_ms=self._frame_ms,
                max_wait_ms=max(50, 3 * self._frame_ms),
            )
        await super()._push_mixed_audio(audio_frame, participant_id)

    async def push_audio_frame(self, frame: InputAudioRawFrame) -> None:
        """Push microphone audio downstream now, as Pipecat's audio task would."""
        if self._params.audio_in_filter or not self._params.audio_in_passthrough:
            await super().push_audio_frame(frame)
        elif self._params.audio_in_enabled and not self._paused:
            await self.push_frame(frame)


class PausableLiveKitTransport(LiveKitTransport):
    """A LiveKit transport whose output is a `PausableLiveKitOutput`.

    Audio arrives at `sample_rate` (the pipeline's input rate) in `frame_ms` frames.
    """

    def __init__(
        self,
        url: str,
        token: str,
        room_name: str,
        params: LiveKitParams,
        *,
        sample_rate: int,
        frame_ms: int,
    ) -> None:
        """Initialize the transport; see the class docstring."""
        super().__init__(url, token, room_name, params)
        self._frame_ms = frame_ms
        self._client = _RatedClient(
            url,
            token,
            room_name,
            self._params,
            self._client._callbacks,
            self.name,
            sample_rate=sample_rate,
            frame_ms=frame_ms,
        )

    def input(self) -> LiveKitInputTransport:
        """The input transport, created once."""
        if not self._input:
            self._input = _RatedInput(
                self, self._client, self._params, name=self._input_name, frame_ms=self._frame_ms
            )
        return self._input

    def output(self) -> LiveKitOutputTransport:
        """The output transport, created once."""
        if not self._output:
            self._output = PausableLiveKitOutput(
                self, self._client, self._params, name=self._output_name
            )
        return self._output
