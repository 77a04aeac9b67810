"""Talking over the bot, through a real livekit-server, as the participant hears it.

A sound without words pauses the bot and it plays on with nothing lost; "mm-hm" lets it
go on; real words stop it for good, and the next reply starts from a context holding only
what was heard. Figures measured at the participant are printed (run with -s).
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import pytest_asyncio

from engines import tone
from tests.hearing import TONE_SENTENCES, last_silence, longest_silence, whole_with_one_backup
from tests.speech import noise_burst, with_pause
from tests.stack import Stack, start_stack
from tests.test_e2e_livekit import Caller, join, scripted, seconds
from tests.waiting import until

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async for running in start_stack(tmp_path_factory.mktemp("turns")):
        yield running


async def talk_over_the_reply(
    stack: Stack, caller: Caller, speak: Callable[[str], bytes], sound: bytes, transcript: str
) -> tuple[float, float]:
    """Ask for the long reply and make a sound once six words are heard.

    Returns when the question was sent and when the sound began.
    """
    # The STT stand-in gives each stretch of voice the VAD reports the next scripted
    # transcript. A short pause mid-question parts it in two (the turn is still one):
    # its second part must get no words, not the sound's, which comes later.
    stack.transcriber.script[:] = ["narrate lengthy saga", ""]
    stack.reply_queue[:] = [TONE_SENTENCES]
    asked_at = caller.participant.say(with_pause(speak("Tell me a long"), speak("story."), 0.15))
    await until(lambda: len(caller.heard(since=asked_at)) >= 6, 30, "six words of the reply")
    # A sound the VAD parts in two gets no words the second time.
    stack.transcriber.script[:] = [transcript, ""]
    return asked_at, caller.participant.say(sound) - seconds(sound)


@pytest.fixture(autouse=True)
def tts_in_flight(stack: Stack) -> Iterator[None]:
    stack.engines.chatterbox.backend.realtime_factor = 1.0  # TTS requests stay in flight
    yield
    stack.engines.chatterbox.backend.realtime_factor = 0.0


async def test_a_cough_pauses_the_bot_which_plays_on_losing_nothing(
    stack: Stack, speak: Callable[[str], bytes]
) -> None:
    caller = await join(stack)
    expected = tone.code(TONE_SENTENCES)
    # A 150 ms noise burst: no voice in it, so the bot plays on as soon as it is over.
    # (A voiced sound without words waits out FALSE_INTERRUPTION_TIMEOUT_MS first:
    # tests/test_pipeline.py.)
    asked_at, sound_at = await talk_over_the_reply(stack, caller, speak, noise_burst(0.15), "")
    await until(
        lambda: caller.heard(since=asked_at)[-1:] == expected[-1:],
        40,
        lambda: f"the end of the reply, heard {caller.heard(since=asked_at)}",
    )
    heard = caller.heard(since=asked_at)
    assert whole_with_one_backup(heard, expected), heard
    around = [at for at in caller.loud_times(since=sound_at - 0.5) if at < sound_at + 2.0]
    paused_at, pause = longest_silence(around)
    assert paused_at - sound_at < 0.5, f"paused {paused_at - sound_at:.2f} s after the burst"
    assert 0.15 <= pause <= 1.5, f"the bot paused {pause:.2f} s"
    print(
        f"\ncough: audio paused {(paused_at - sound_at) * 1000:.0f} ms after the sound began, "
        f"for {pause:.2f} s; {len(heard)} words heard for {len(expected)}"
    )
    await caller.participant.leave()


async def test_mm_hm_lets_the_bot_go_on(stack: Stack, speak: Callable[[str], bytes]) -> None:
    caller = await join(stack)
    expected = tone.code(TONE_SENTENCES)
    asked_at, _ = await talk_over_the_reply(stack, caller, speak, speak("Mm-hm."), "mm-hm")
    await until(
        lambda: caller.heard(since=asked_at)[-1:] == expected[-1:],
        40,
        lambda: f"the end of the reply, heard {caller.heard(since=asked_at)}",
    )
    assert whole_with_one_backup(caller.heard(since=asked_at), expected)
    stack.transcriber.script[:] = ["what next", ""]
    stack.reply_queue[:] = [scripted("Finished.")]
    requests = len(stack.engines.chat.log.of_kind("chat"))
    caller.participant.say(speak("What next?"))
    await until(lambda: len(stack.engines.chat.log.of_kind("chat")) > requests, 30, "a request")
    messages = stack.engines.chat.log.of_kind("chat")[-1]["body"]["messages"]
    assert [m["content"] for m in messages if m["role"] == "user"][-2:] == [
        "narrate lengthy saga",
        "what next",
    ], "the backchannel stayed out of the context"
    await caller.participant.leave()


async def test_stop_what_time_is_it_stops_the_reply_and_is_answered(
    stack: Stack, speak: Callable[[str], bytes]
) -> None:
    caller = await join(stack)
    old = tone.code(TONE_SENTENCES)
    answer = scripted("Noon exactly.")
    new = tone.code(answer)
    assert not set(old) & set(new)
    stack.replies["time"] = answer
    try:
        asked_at, spoke_at = await talk_over_the_reply(
            stack, caller, speak, speak("Stop, what time is it?"), "stop what time is it"
        )
        await until(
            lambda: caller.heard(since=spoke_at)[-len(new) :] == new,
            30,
            lambda: f"the answer {new}, heard {caller.heard(since=spoke_at)}",
        )
    finally:
        stack.replies.clear()
    # The old reply's cut is the silence before the answer (a TTS running at real time
    # may leave gaps in the old reply itself on a busy machine).
    silent_at = last_silence(caller.loud_times(since=spoke_at))
    assert silent_at is not None
    cutoff_ms = (silent_at - spoke_at) * 1000
    heard_old = caller.heard(since=asked_at, until=silent_at + 0.05)
    assert set(heard_old) <= set(old) and len(heard_old) < len(old), heard_old
    assert caller.heard(since=silent_at + 0.05) == new, "nothing of the old reply after the cut"
    assert cutoff_ms < 1500, f"the old reply went on {cutoff_ms:.0f} ms"

    # The answer came from a context that holds what was heard of the old reply, no more.
    messages = stack.engines.chat.log.of_kind("chat")[-1]["body"]["messages"]
    assert messages[-1] == {"role": "user", "content": "stop what time is it"}
    (said,) = [m["content"] for m in messages[-3:] if m["role"] == "assistant"]
    in_context = tone.code(said)
    assert in_context == old[: len(in_context)], "a prefix of the reply"
    print(
        f"\nstop: the old reply went silent at the participant {cutoff_ms:.0f} ms after speech "
        f"began; heard {len(heard_old)} words, context holds {len(in_context)}"
    )
    await caller.participant.leave()
    # A word cut in the middle may be heard or not: one word either way.
    assert abs(len(in_context) - len(heard_old)) <= 1, (
        f"context holds {len(in_context)} words, {len(heard_old)} were heard"
    )


async def test_a_pause_mid_thought_leaves_one_turn(
    stack: Stack, speak: Callable[[str], bytes]
) -> None:
    caller = await join(stack)
    reply = scripted("Booking confirmed.")
    # Each half is its own stretch of voice to the VAD, so each gets its own transcript.
    stack.transcriber.script[:] = ["book a table for", "four people", ""]
    stack.reply_queue[:] = [reply]
    chat = stack.engines.chat.log
    requests = len(chat.of_kind("chat"))
    sentence = with_pause(speak("I'd like to book a table for"), speak("four people."), 0.6)
    await asyncio.sleep(0.5)  # the greeting's last beep is still arriving when decoded
    ended_at = caller.participant.say(sentence)
    await until(
        lambda: caller.heard(since=ended_at - seconds(sentence)) == tone.code(reply),
        30,
        lambda: f"one reply, heard {caller.heard(since=ended_at - seconds(sentence))}",
    )
    # Nothing answered or started at the pause: every request holds the whole sentence.
    # (On a busy machine the VAD may part "four people" too; a reply started at that
    # gap is withdrawn when the user goes on, unheard, and asked again.)
    asked = [r["body"]["messages"][-1] for r in chat.of_kind("chat")[requests:]]
    assert asked, "a request"
    assert all(m == {"role": "user", "content": "book a table for four people"} for m in asked), (
        asked
    )
    first_audio = caller.loud_times(since=ended_at)
    if first_audio:
        gap_ms = (first_audio[0] - ended_at) * 1000
        print(f"\nmid-thought: the reply was heard {gap_ms:.0f} ms after the speech ended")
    await caller.participant.leave()
