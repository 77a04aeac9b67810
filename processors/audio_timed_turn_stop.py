"""The speech timeout of a user's turn, counted in their audio, not on the wall clock.

With `VAD_PAUSE_SECS` the VAD reports a pause early and the turn waits out the rest of
the endpointing silence. Pipecat's strategy waits on a timer; on a busy machine the VAD
analyses audio late, and a timer can then end the turn before the VAD has even seen
the user start speaking again. Counting the audio frames that reach the strategy keeps
the endpointing in the audio's own time, as the VAD's own stop count always was.

A final transcript that stops mid-phrase ("a table for…", `processors/unfinished_phrase.py`)
stretches the silence the turn waits for to `unfinished_timeout`, counted from the same
pause, so a user who pauses mid-thought is not answered half-way.
"""

from pipecat.frames.frames import Frame, InputAudioRawFrame, TranscriptionFrame
from pipecat.turns.types import ProcessFrameResult
from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy

from processors.unfinished_phrase import ends_unfinished


class AudioTimedUserTurnStopStrategy(SpeechTimeoutUserTurnStopStrategy):
    """`SpeechTimeoutUserTurnStopStrategy` whose user-speech timeout runs on audio."""

    def __init__(
        self,
        *,
        unfinished_words: list[str] | tuple[str, ...] = (),
        unfinished_timeout: float = 0.0,
        **kwargs,
    ) -> None:
        """Initialize the strategy.

        Args:
            unfinished_words: Words a finished sentence does not end on.
            unfinished_timeout: Silence to wait after a transcript that stops
                mid-phrase, from the same moment as `user_speech_timeout`; 0 (or
                anything shorter) turns the hold off.
            **kwargs: Passed to `SpeechTimeoutUserTurnStopStrategy`.
        """
        super().__init__(**kwargs)
        self._unfinished_words = frozenset(w.lower() for w in unfinished_words)
        self._unfinished_timeout = unfinished_timeout
        # Silence heard since the timer started, whether it still runs, and whether
        # the last transcript stopped mid-phrase.
        self._silence_heard = 0.0
        self._counting = False
        self._holding = False

    @property
    def holding(self) -> bool:
        """Whether the last final transcript stopped mid-phrase and the turn waits on."""
        return self._holding

    async def process_frame(self, frame: Frame) -> ProcessFrameResult:
        """Count the user's silence while the turn waits for more speech."""
        result = await super().process_frame(frame)
        if isinstance(frame, InputAudioRawFrame) and (self._counting or self._vad_stopped):
            self._silence_heard += len(frame.audio) / 2 / frame.num_channels / frame.sample_rate
            if self._counting and self._silence_heard >= self._silence_needed():
                self._counting = False
                self._user_speech_wait_done = True
                await self._maybe_trigger_user_turn_stopped()
        return result

    async def _handle_transcription(self, frame: TranscriptionFrame) -> None:
        if frame.text.strip():
            unfinished = ends_unfinished(frame.text, self._unfinished_words)
            self._holding = unfinished and self._unfinished_timeout > self._user_speech_timeout
            if self._holding and self._user_speech_wait_done:
                # The silence ran out before this transcript came: wait out the rest.
                self._user_speech_wait_done = self._silence_heard >= self._silence_needed()
                self._counting = not self._user_speech_wait_done
        await super()._handle_transcription(frame)

    def _silence_needed(self) -> float:
        return self._unfinished_timeout if self._holding else self._user_speech_timeout

    async def _restart_user_speech_timer(self) -> None:
        self._user_speech_wait_done = False
        self._silence_heard = 0.0
        self._counting = True

    async def _reset(self, *, clear_vad_user_speaking: bool) -> None:
        # Voice alone does not end the hold (a breath, a click): the next transcript does.
        self._holding = False
        await super()._reset(clear_vad_user_speaking=clear_vad_user_speaking)

    async def _cancel_all_tasks(self) -> None:
        self._counting = False
        await super()._cancel_all_tasks()
