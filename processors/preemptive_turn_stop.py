"""Ending the user's turn on a speech timeout, with the reply started preemptively.

As soon as the transcript is final and the user is silent, but before the endpointing
silence has run out, the reply is generated speculatively (Pipecat's speculative
inference: a provisional context, the real one untouched). If the user speaks again,
or more words arrive, the speculation is withdrawn: the LLM and TTS requests are
closed and nothing of that reply is played. When the turn ends with the transcript the
speculation answered, the reply already under way is confirmed and played; otherwise
it is withdrawn and the whole turn answered afresh. LiveKit Agents calls this
`preemptive_generation`; like it, nothing is started while the bot is speaking, and a
turn gets at most `MAX_PREEMPTIONS` tries (each withdrawn one cost an LLM request).
"""

import re

from loguru import logger
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
)
from pipecat.turns.types import ProcessFrameResult, UserTurnSpeculation
from pipecat.utils.string import TextPartForConcatenation, concatenate_aggregated_text

from processors.audio_timed_turn_stop import AudioTimedUserTurnStopStrategy

_NOT_WORDS = re.compile(r"[^\w']+")
MAX_PREEMPTIONS = 3


def same_words(first: str, second: str) -> bool:
    """Whether two transcripts say the same words, whatever the case and punctuation."""
    return _NOT_WORDS.sub(" ", first).casefold().split() == (
        _NOT_WORDS.sub(" ", second).casefold().split()
    )


class PreemptiveUserTurnStopStrategy(AudioTimedUserTurnStopStrategy):
    """`AudioTimedUserTurnStopStrategy` that starts the reply on a final transcript."""

    def __init__(self, **kwargs) -> None:
        """Initialize the strategy; arguments as `SpeechTimeoutUserTurnStopStrategy`."""
        super().__init__(**kwargs)
        self._speculation: UserTurnSpeculation | None = None
        self._bot_speaking = False
        # The turn's transcripts, joined as the user aggregator will join them.
        self._parts: list[TextPartForConcatenation] = []
        self._preemptions = 0

    async def process_frame(self, frame: Frame) -> ProcessFrameResult:
        """Track the bot's speech, withdraw on new words, then time the turn as usual."""
        if isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
        elif isinstance(frame, InterimTranscriptionFrame):
            # More words are coming: the speculation answers too little.
            await self._withdraw("more words arrived")
        return await super().process_frame(frame)

    async def _handle_transcription(self, frame: TranscriptionFrame) -> None:
        self._parts.append(
            TextPartForConcatenation(
                frame.text, includes_inter_part_spaces=frame.includes_inter_frame_spaces
            )
        )
        await super()._handle_transcription(frame)
        # `_text` is empty again if that transcript just ended the turn.
        if (
            frame.finalized
            and self._text.strip()
            and self._vad_stopped
            and not self._vad_user_speaking
            and not self._bot_speaking
            and not self.holding  # the user is mid-phrase: more is coming
            and self._preemptions < MAX_PREEMPTIONS
        ):
            self._preemptions += 1
            await self._withdraw("the transcript grew")
            self._speculation = UserTurnSpeculation(text=self._turn_text())
            logger.debug(f"{self}: starting the reply before the turn ends")
            await self.trigger_user_turn_inference_triggered(speculation=self._speculation)

    async def trigger_user_turn_stopped(self, *, enable_user_speaking_frames: bool | None = None):
        """End the turn, keeping the reply under way if it answers the whole turn."""
        speculation, self._speculation = self._speculation, None
        if speculation is not None and same_words(speculation.text, self._turn_text()):
            await self.trigger_user_turn_finalized(
                enable_user_speaking_frames=enable_user_speaking_frames,
                confirms_speculation=True,
            )
            return
        if speculation is not None:
            logger.debug(f"{self}: the turn ended on other words, answering afresh")
            await self.trigger_user_turn_speculation_cancelled()
        await super().trigger_user_turn_stopped(
            enable_user_speaking_frames=enable_user_speaking_frames
        )

    def _turn_text(self) -> str:
        return concatenate_aggregated_text(self._parts)

    async def _reset(self, *, clear_vad_user_speaking: bool) -> None:
        self._parts = []
        self._preemptions = 0
        await super()._reset(clear_vad_user_speaking=clear_vad_user_speaking)

    async def _discard_pending_end_of_turn(self) -> None:
        # Runs when the user speaks again and at each turn boundary.
        await self._withdraw("the user went on")
        await super()._discard_pending_end_of_turn()

    async def _withdraw(self, reason: str) -> None:
        speculation, self._speculation = self._speculation, None
        if speculation is not None:
            logger.debug(f"{self}: withdrawing the preemptive reply: {reason}")
            await self.trigger_user_turn_speculation_cancelled()
