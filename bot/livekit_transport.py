"""Pipecat's LiveKit transport with a measured input and a pausable output.

The output's audio can pause and resume; the input reports how long the user's audio
waited in WebRTC's jitter buffer.
"""

from pipecat.transports.livekit.transport import (
    LiveKitInputTransport,
    LiveKitOutputTransport,
    LiveKitTransport,
)

from bot.measured_livekit_input import MeasuredLiveKitInput
from processors.pausable_output import PausableOutput


class PausableLiveKitOutput(PausableOutput, LiveKitOutputTransport):
    """LiveKit output; a pause takes back what the rtc AudioSource has not played."""

    def _unplayed_seconds(self) -> float:
        source = self._client._audio_source  # Pipecat 1.14 has no public handle on it.
        return source.queued_duration if source else 0.0

    def _drop_unplayed(self) -> None:
        if self._client._audio_source:
            self._client._audio_source.clear_queue()


class PausableLiveKitTransport(LiveKitTransport):
    """A LiveKit transport with a `MeasuredLiveKitInput` and a `PausableLiveKitOutput`."""

    def input(self) -> LiveKitInputTransport:
        """The input transport, created once."""
        if not self._input:
            self._input = MeasuredLiveKitInput(
                self, self._client, self._params, name=self._input_name
            )
        return self._input

    def output(self) -> LiveKitOutputTransport:
        """The output transport, created once."""
        if not self._output:
            self._output = PausableLiveKitOutput(
                self, self._client, self._params, name=self._output_name
            )
        return self._output
