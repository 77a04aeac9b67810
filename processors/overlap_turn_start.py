"""When the user's turn starts, and what the user's voice does while the bot talks.

With the bot silent, the first sign of speech (the VAD, or a transcript the VAD missed)
starts the user's turn, and with it an interruption of whatever the bot was preparing.

While the bot talks, a sound is not yet a turn: it may be a cough, a door, or "mm-hm".
The bot's audio pauses as soon as the sound begins (`UserSoundStartedFrame`, before the
VAD has confirmed anything) and the words decide:
- at least `min_words` words that are not backchannels start the turn, which
  interrupts the paused reply for good;
- a transcript of backchannels only is dropped from the user's aggregation and the
  bot plays on at once;
- a sound the VAD never took for speech, in which Silero heard no voice at all (a
  cough, a door), resumes the bot as soon as it ends;
- no transcript within `false_interruption_timeout` of the sound ending (or a sound that
  goes on for `max_pause` without words) resumes the bot where it paused.

LiveKit Agents does the same with `resume_false_interruption`,
`false_interruption_timeout` and `min_interruption_words`, except that it only pauses
once enough words are in, so a cough there does not pause the bot and a barge-in waits
for the transcript.
"""

import asyncio

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.turns.types import ProcessFrameResult
from pipecat.turns.user_start import BaseUserTurnStartStrategy

from processors.backchannel import normalize, real_words
from processors.playout_frames import PausePlayoutFrame, ResumePlayoutFrame
from processors.sound_frames import UserSoundStartedFrame, UserSoundStoppedFrame

DEFAULT_MAX_PAUSE_S = 6.0


class OverlapUserTurnStartStrategy(BaseUserTurnStartStrategy):
    """Starts the user's turn; while the bot talks, only real words interrupt it."""

    def __init__(
        self,
        *,
        backchannel_words: list[str] | tuple[str, ...],
        min_words: int = 1,
        false_interruption_timeout: float = 1.0,
        max_pause: float = DEFAULT_MAX_PAUSE_S,
        **kwargs,
    ) -> None:
        """Initialize the strategy.

        Args:
            backchannel_words: Words that never count toward an interruption.
            min_words: Real words needed to interrupt the bot while it talks.
            false_interruption_timeout: Seconds after a sound ends without words
                before the paused bot plays on; 0 turns pausing off (the bot then
                talks over sounds until enough words arrive).
            max_pause: Longest pause for a sound that goes on without words.
            **kwargs: Passed to `BaseUserTurnStartStrategy`.
        """
        super().__init__(**kwargs)
        self._backchannels = frozenset(normalize(w) for w in backchannel_words)
        self._min_words = min_words
        self._resume_after = false_interruption_timeout
        self._max_pause = max_pause
        self._bot_speaking = False
        self._paused = False
        # Paused on a sound the VAD has not (yet) taken for speech.
        self._on_sound_only = False
        self._final_words = 0
        self._resume_task: asyncio.Task | None = None
        self._max_pause_task: asyncio.Task | None = None

    @property
    def _overlapping(self) -> bool:
        return self._bot_speaking or self._paused

    async def handle_user_turn_started(self) -> None:
        """The turn began: whatever was paused is now interrupted."""
        self._paused = False
        self._final_words = 0
        await self._cancel_timers()

    async def cleanup(self) -> None:
        """Stop the timers."""
        await super().cleanup()
        await self._cancel_timers()

    async def process_frame(self, frame: Frame) -> ProcessFrameResult:
        """Start the turn, pause or resume the bot, as the frame warrants."""
        if isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
        elif isinstance(frame, UserSoundStartedFrame):
            if self._overlapping and self._enable_interruptions and self._resume_after:
                await self._pause(on_sound_only=True)
        elif isinstance(frame, UserSoundStoppedFrame):
            if self._paused and self._on_sound_only:
                if frame.voiced:
                    await self._restart_resume_timer(self._resume_after)
                else:
                    await self._resume()
        elif isinstance(frame, VADUserStartedSpeakingFrame):
            return await self._on_voice_started()
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            if self._paused and self._resume_after:
                await self._restart_resume_timer(self._resume_after)
        elif isinstance(frame, (TranscriptionFrame, InterimTranscriptionFrame)):
            return await self._on_transcript(frame)
        return ProcessFrameResult.CONTINUE

    async def _on_voice_started(self) -> ProcessFrameResult:
        if not (self._overlapping and self._enable_interruptions):
            await self.trigger_user_turn_started()
            return ProcessFrameResult.STOP
        if not self._resume_after:
            return ProcessFrameResult.CONTINUE
        await self._cancel_resume_timer()
        await self._pause(on_sound_only=False)
        return ProcessFrameResult.CONTINUE

    async def _pause(self, *, on_sound_only: bool) -> None:
        if self._paused:
            self._on_sound_only = self._on_sound_only and on_sound_only
            return
        self._on_sound_only = on_sound_only
        self._paused = True
        self._final_words = 0
        await self.push_frame(PausePlayoutFrame())
        self._max_pause_task = self.task_manager.create_task(
            self._resume_later(self._max_pause), f"{self}::max_pause"
        )

    async def _on_transcript(
        self, frame: TranscriptionFrame | InterimTranscriptionFrame
    ) -> ProcessFrameResult:
        if not frame.text.strip():
            return ProcessFrameResult.CONTINUE
        if not (self._overlapping and self._enable_interruptions):
            await self.trigger_user_turn_started()
            return ProcessFrameResult.STOP
        words = len(real_words(frame.text, self._backchannels))
        if self._final_words + words >= self._min_words:
            await self.trigger_user_turn_started()
            return ProcessFrameResult.STOP
        if isinstance(frame, TranscriptionFrame):
            # Too few real words: the bot goes on, and they stay out of the next turn.
            self._final_words += words
            await self.trigger_reset_aggregation()
            if self._paused:
                await self._resume()
        return ProcessFrameResult.CONTINUE

    async def _resume(self) -> None:
        if not self._paused:
            return
        self._paused = False
        await self._cancel_timers()
        await self.push_frame(ResumePlayoutFrame())

    async def _resume_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        # This task is one of those _resume cancels: forget it first.
        if self._resume_task is asyncio.current_task():
            self._resume_task = None
        else:
            self._max_pause_task = None
        await self._resume()

    async def _restart_resume_timer(self, delay: float) -> None:
        await self._cancel_resume_timer()
        self._resume_task = self.task_manager.create_task(
            self._resume_later(delay), f"{self}::resume"
        )

    async def _cancel_resume_timer(self) -> None:
        if self._resume_task:
            await self.task_manager.cancel_task(self._resume_task)
            self._resume_task = None

    async def _cancel_timers(self) -> None:
        await self._cancel_resume_timer()
        if self._max_pause_task:
            await self.task_manager.cancel_task(self._max_pause_task)
            self._max_pause_task = None
