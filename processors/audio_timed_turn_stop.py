"""The speech timeout of a user's turn, counted in their audio, not on the wall clock.

With `VAD_PAUSE_SECS` the VAD reports a pause early and the turn waits out the rest of
the endpointing silence. Pipecat's strategy waits on a timer; on a busy machine the VAD
analyses audio late, and a timer can then end the turn before the VAD has even seen
the user start speaking again. Counting the audio frames that reach the strategy keeps
the endpointing in the audio's own time, as the VAD's own stop count always was.
"""

from pipecat.frames.frames import Frame, InputAudioRawFrame
from pipecat.turns.types import ProcessFrameResult
from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy


class AudioTimedUserTurnStopStrategy(SpeechTimeoutUserTurnStopStrategy):
    """`SpeechTimeoutUserTurnStopStrategy` whose user-speech timeout runs on audio."""

    def __init__(self, **kwargs) -> None:
        """Initialize the strategy; arguments as `SpeechTimeoutUserTurnStopStrategy`."""
        super().__init__(**kwargs)
        self._silence_left: float | None = None

    async def process_frame(self, frame: Frame) -> ProcessFrameResult:
        """Count the user's audio down while the turn waits for more speech."""
        result = await super().process_frame(frame)
        if isinstance(frame, InputAudioRawFrame) and self._silence_left is not None:
            self._silence_left -= len(frame.audio) / 2 / frame.num_channels / frame.sample_rate
            if self._silence_left <= 0:
                self._silence_left = None
                self._user_speech_wait_done = True
                await self._maybe_trigger_user_turn_stopped()
        return result

    async def _restart_user_speech_timer(self) -> None:
        self._user_speech_wait_done = False
        self._silence_left = self._user_speech_timeout

    async def _cancel_all_tasks(self) -> None:
        self._silence_left = None
        await super()._cancel_all_tasks()
