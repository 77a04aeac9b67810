"""The assistant's context holds what the listener heard of a reply, no more.

The output plays through a one-second buffer, as LiveKit's AudioSource does, so text
passed on when its audio is written runs up to a second ahead of what was heard.
"""

import asyncio
import time
from typing import Any

import pytest
from pipecat.frames.frames import (
    AggregatedTextFrame,
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    OutputAudioRawFrame,
    StartFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import TransportParams
from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies

from processors.heard_text import HeardText
from processors.pausable_output import PausableOutput
from processors.playout_frames import PausePlayoutFrame, ResumePlayoutFrame

pytestmark = pytest.mark.pipeline

RATE = 24000
BUFFER_S = 1.0
FIRST, SECOND = "Amber basil cedar dahlia.", "Ember garnet hazel indigo."


class _PlayoutBuffer(BaseOutputTransport):
    """Takes audio at once until a second is queued, then at the pace it plays."""

    def __init__(self, params: TransportParams) -> None:
        super().__init__(params)
        self.dry_at = 0.0

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        now = time.monotonic()
        self.dry_at = max(self.dry_at, now) + len(frame.audio) / 2 / frame.sample_rate
        await asyncio.sleep(max(0.0, self.dry_at - now - BUFFER_S))
        return True


class BufferedSpeaker(PausableOutput, _PlayoutBuffer):
    def _unplayed_seconds(self) -> float:
        return max(0.0, self.dry_at - time.monotonic())

    def _drop_unplayed(self) -> None:
        self.dry_at = time.monotonic()


def speech(seconds: float) -> TTSAudioRawFrame:
    return TTSAudioRawFrame(bytes(int(seconds * RATE) * 2), RATE, 1)


def spoken(text: str) -> TTSTextFrame:
    frame = TTSTextFrame(text, text_type="sentence")
    frame.will_be_spoken = True
    return frame


def announced(text: str) -> AggregatedTextFrame:
    """The text the TTS sends ahead of a sentence's audio."""
    frame = AggregatedTextFrame(text, text_type="sentence")
    frame.will_be_spoken = True
    frame.append_to_context = False
    return frame


async def reply_heard(*after_reply, sleep: float, second_done: bool = True) -> list[Any]:
    """Play two sentences of one second each, then `after_reply`; the context after.

    Unless `second_done`, the second sentence's text frame has not come (its audio is
    still being synthesized) when `after_reply` happens.
    """
    context = LLMContext()
    # Pipecat's default turn strategies would load the smart-turn model, unused here.
    strategies = UserTurnStrategies(stop=[SpeechTimeoutUserTurnStopStrategy()])
    aggregators = LLMContextAggregatorPair(
        context, user_params=LLMUserAggregatorParams(user_turn_strategies=strategies)
    )
    speaker = BufferedSpeaker(TransportParams(audio_out_enabled=True, audio_out_end_silence_secs=0))
    await run_test(
        Pipeline([speaker, aggregators.assistant()]),
        frames_to_send=[
            LLMFullResponseStartFrame(),
            TTSStartedFrame(),
            announced(FIRST),
            speech(1.0),
            spoken(FIRST),
            announced(SECOND),
            speech(1.0),
            *(
                [spoken(SECOND), TTSStoppedFrame(), LLMFullResponseEndFrame()]
                if second_done
                else []
            ),
            SleepFrame(sleep),
            *after_reply,
        ],
    )
    return context.get_messages()


async def test_an_interrupted_reply_leaves_only_the_words_heard_in_the_context() -> None:
    # At 1.12 s the listener has heard the first sentence and the start of "Ember"
    # ("garnet" starts at 1.23 s), while the whole reply was written to the buffer by
    # ~1.0 s.
    messages = await reply_heard(InterruptionFrame(), sleep=1.12)
    assert messages == [{"role": "assistant", "content": f"{FIRST} Ember"}]


async def test_a_sentence_still_being_synthesized_counts_at_the_pace_so_far() -> None:
    # The first sentence took 1 s for 26 characters: "garnet" is due at 1.23 s.
    messages = await reply_heard(InterruptionFrame(), sleep=1.12, second_done=False)
    assert messages == [{"role": "assistant", "content": f"{FIRST} Ember"}]


async def test_a_reply_played_to_the_end_is_whole_in_the_context() -> None:
    messages = await reply_heard(sleep=2.4)
    assert messages == [{"role": "assistant", "content": f"{FIRST} {SECOND}"}]


async def test_a_paused_reply_counts_nothing_during_the_pause() -> None:
    # Paused at 0.35 s for a second: the heard part is still the first 0.35 s ("basil"
    # and "cedar" start at 0.23 and 0.46 s).
    messages = await reply_heard(
        SleepFrame(0.35), PausePlayoutFrame(), SleepFrame(1.0), InterruptionFrame(), sleep=0.0
    )
    assert messages == [{"role": "assistant", "content": "Amber basil"}]


async def test_a_resumed_reply_is_whole_in_the_context() -> None:
    messages = await reply_heard(
        SleepFrame(0.6), PausePlayoutFrame(), SleepFrame(0.5), ResumePlayoutFrame(), sleep=2.4
    )
    assert messages == [{"role": "assistant", "content": f"{FIRST} {SECOND}"}]


def words(frames: list[Frame]) -> list[str]:
    return [f.text for f in frames if isinstance(f, TTSTextFrame)]


def test_words_are_spread_over_their_audio_by_length() -> None:
    text = HeardText()
    text.add_text(spoken("a bbb"), audio_end=800)
    # Word lengths with a space each: 2 and 4 of 6; they start at 0 and 2/6 of the audio.
    assert words(text.heard(0)) == ["a"]
    assert words(text.heard(265)) == []
    assert words(text.heard(266)) == ["bbb"]


def test_a_word_heard_before_its_sentence_text_is_spoken_text_of_that_sentence() -> None:
    """Else the client shows it again as new text ("Welcome aboard. Welcome")."""
    text = HeardText()
    sentence = announced("Welcome aboard.")
    text.announce(sentence, bytes_per_second=32000)
    [word] = text.heard(0)
    assert isinstance(word, TTSTextFrame) and word.text == "Welcome"
    assert word.will_be_spoken and word.segment_id == sentence.id and word.append_to_context
