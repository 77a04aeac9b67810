"""Turn-taking over a reply, side by side (issue 12's points): `--scenarios turn-taking`.

Per round and system, through the real livekit-server, the listener:
- coughs over a long reply (a 150 ms white-noise burst, as `tests/test_e2e_turn_taking.py`),
  then reads from the tone code which of the reply's words it heard, lost or heard
  twice, and times the sound's start to the bot's audio pausing at the listener;
- the same with a short voice the STT finds no words in ("wordless": an espeak
  "Mm-hm." transcribed as nothing), which every VAD takes for speech: the
  false-interruption path (pause, then resume);
- says "mm-hm" over the reply (the same voice, transcribed "mm-hm"): heard in full,
  with no pause and no answer to the "mm-hm"?
- says "Stop, what time is it?" over a reply (`bench.listener.barge_in.interrupt`):
  first voiced sample to the last old-reply audio heard, and is the time answered next?
- pauses mid-thought ("I'd like to book a table for" … 0.7 s … "four people"): is bot
  audio heard before the sentence ends, or the answer to its first half?

The STT stand-in answers each stretch of voice a VAD reports (an upload for the peer,
an utterance for us) with the next scripted transcript and the later ones with nothing;
the sound's words are scripted only once the reply plays.
"""

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

from bench.compare.scenarios import GAP_S, Results, join, speak_over
from bench.compare.systems import Bench, System
from bench.listener import barge_in
from bench.listener.listener import Listener
from bench.listener.mid_thought import BOOKED, CUT_OFF, FIRST_HALF, SECOND_HALF
from bench.listener.run import EngineDelays
from bench.speech import speech
from bench.stats import percentile
from engines import tone
from tests.hearing import TONE_SENTENCES, first_silence, whole_with_one_backup
from tests.speech import noise_burst, with_pause

SCENARIOS = ("cough", "wordless", "mm-hm", "stop", "mid-thought")
COUGH_S = 0.15
STORY, STORY_TRANSCRIPT = "Tell me a long story.", "narrate lengthy saga"
BURST = "Mm-hm."
MID_THOUGHT_PAUSE_S = 0.7  # longer than every VAD's silence (0.4 s; 0.55 s the peer's default)
# Replies by a word of the transcript; the whole sentence before its first half.
REPLIES = {
    "four people": BOOKED,
    "table for": CUT_OFF,
    "saga": TONE_SENTENCES,
    "paris": barge_in.LONG_REPLY,
    "time": barge_in.ANSWER,
}
# Engines at 150/150/150 ms; the TTS speaks in real time, so requests stay in flight.
DELAYS = EngineDelays(150, 150, 200, 150, tts_realtime_factor=1.0)
SOUND_AFTER_S = 0.9  # into the reply (about six words) the sound is made
# A silence starting this soon after the sound began (before any VAD could hear it), or
# this late, is not its pause: a TTS running late on a busy machine leaves gaps too.
REACTION_S = (0.1, 2.5)
SETTLE_S = 0.6  # quiet after the reply's last word: it is over
# Quiet this long means a reply stopped for good: longer than any pause before a resume.
# The peer's default resumes 2 s after the sound's end once its turn detector has ruled
# on the empty turn, which may wait out its 3 s `max_delay`: ~4 s seen.
GIVE_UP_S = 6.0
ROUND_TIMEOUT_S = 40.0
# A barge-in "faster" than this found the reply not playing (a gap of a TTS running late):
# no VAD hears speech that soon. The round fails.
NOT_PLAYING_MS = 50.0


@dataclass
class Overlap:
    """A sound made over the reply, and what the listener heard of the reply."""

    heard: int  # the reply's words heard, repeats included
    lost: int
    repeated: int
    other: int  # words heard that are not the reply's (an answer to the sound)
    whole: bool  # every word in order, at most one short backup
    order: list[int]  # the reply's word numbers as heard (-1: a word not of the reply)
    pause_onset_ms: float | None  # the sound's first voiced sample sent -> bot audio paused
    pause_ms: float | None  # how long it stayed paused


@dataclass
class Stop:
    """The interruption "Stop, what time is it?" over a reply."""

    barge_in_ms: float | None  # first voiced sample sent -> last old-reply audio heard
    answered: bool  # the answer to the new question was heard after it
    # Words heard from the question on: 1 a word of the old reply, 2 of the answer, 3 a
    # word of both, 0 others.
    heard: list[int]


@dataclass
class MidThought:
    """A sentence with a pause mid-thought."""

    cut_off: bool  # bot audio before the sentence ended, or the first half answered
    voice_to_voice_ms: float | None


def score_overlap(
    expected: list[int], heard: list[int], loud: list[float], onset: float
) -> Overlap:
    """What the listener's words and loud moments say about a reply talked over at `onset`."""
    mine = [w for w in heard if w in set(expected)]
    gap = first_silence(loud, onset + REACTION_S[0], GAP_S)
    paused = gap is not None and gap[0] - onset < REACTION_S[1]
    return Overlap(
        heard=len(mine),
        lost=sum((Counter(expected) - Counter(mine)).values()),
        repeated=sum((Counter(mine) - Counter(expected)).values()),
        other=len(heard) - len(mine),
        whole=whole_with_one_backup(mine, expected),
        order=[expected.index(w) if w in expected else -1 for w in heard],
        pause_onset_ms=round((gap[0] - onset) * 1000, 1) if paused and gap else None,
        pause_ms=round(gap[1] * 1000, 1) if paused and gap else None,
    )


def score_mid_thought(
    words: list[int], early: float | None, speech_end: float, answer: float | None
) -> MidThought:
    """Cut off when bot audio came `early` (before `speech_end`) or the first half was answered."""
    cut = tone.code(CUT_OFF)[1:]  # its first word is also the booking's
    answered_half = any(words[i : i + len(cut)] == cut for i in range(len(words)))
    return MidThought(
        cut_off=(early is not None and early < speech_end) or answered_half,
        voice_to_voice_ms=None if answer is None else round((answer - speech_end) * 1000, 1),
    )


async def _until(condition: Callable[[], bool], timeout_s: float, every_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(every_s)
    return True


async def overlap_round(
    listener: Listener, bench: Bench, question: bytes, sound: bytes, transcript: str
) -> Overlap | None:
    """Ask for the tone-sentence story, make `sound` over it, hear it out."""
    script = bench.stack.transcriber.script
    script[:] = [STORY_TRANSCRIPT, ""]
    said = await listener.say(question)
    if not await _until(lambda: listener.first_sound(said.speech_end) is not None, 20, 0.02):
        return None
    await asyncio.sleep(SOUND_AFTER_S)
    script[:] = [transcript, ""]
    onset = await speak_over(listener.participant, sound)
    expected = tone.code(TONE_SENTENCES)

    def over() -> bool:
        if listener.quiet_since(GIVE_UP_S):
            return True
        # Its last word heard, or something else said instead (the sound was answered).
        last = listener.words(onset)[-2:]
        ended = expected[-1] in last or any(w not in expected for w in last)
        return listener.quiet_since(SETTLE_S) and ended

    await _until(over, ROUND_TIMEOUT_S, 0.3)
    heard = listener.words(said.started_at)
    return score_overlap(expected, heard, listener.sounds(onset - 0.1), onset)


async def stop_round(
    listener: Listener, bench: Bench, question: bytes, interruption: bytes, ours: bool
) -> Stop | None:
    """`bench.listener.barge_in.interrupt` on any system (the peer sends no turn metrics)."""
    asked = time.monotonic()
    turn = await barge_in.interrupt(listener, question, interruption, 20, bench.stack, ours)
    if turn.listener_ms is None or turn.listener_ms < NOT_PLAYING_MS:
        return None
    old, new = set(tone.code(barge_in.LONG_REPLY)), set(tone.code(barge_in.ANSWER))
    heard = [(w in old) + 2 * (w in new) for w in listener.words(asked)]
    # Under load a beep of the answer is now and then garbled or split in two: all but
    # one of the answer's own words heard is an answer.
    answered = turn.answer_heard or heard.count(2) >= len(new - old) - 1
    return Stop(turn.listener_ms, answered, heard)


async def mid_thought_round(listener: Listener, bench: Bench, sentence: bytes) -> MidThought:
    """Say the sentence with its pause; wait for a reply to be heard out."""
    # Each half is its own stretch of voice to every VAD: its own transcript.
    bench.stack.transcriber.script[:] = ["book a table for", "four people", ""]
    said = await listener.say(sentence)
    await _until(
        lambda: (
            listener.first_sound(said.speech_end) is not None and listener.quiet_since(SETTLE_S)
        ),
        20,
        0.05,
    )
    return score_mid_thought(
        listener.words(said.started_at),
        listener.first_sound(said.started_at),
        said.speech_end,
        listener.first_sound(said.speech_end),
    )


async def turn_taking(
    bench: Bench, systems: list[System], ours: set[str], rounds: int, results: Results
) -> None:
    """`rounds` of every scenario; systems alternate within each scenario."""
    story, burst = speech(STORY), speech(BURST)
    question, stop = speech(barge_in.QUESTION), speech(barge_in.INTERRUPTION)
    sentence = with_pause(speech(FIRST_HALF), speech(SECOND_HALF), MID_THOUGHT_PAUSE_S)
    stack = bench.stack
    DELAYS.apply(stack.engines)
    saved = dict(stack.replies)
    stack.replies.clear()
    stack.replies.update(REPLIES)
    listeners = [(await join(system)).listener for system in systems]
    runs: dict[str, Callable[[Listener, System], Any]] = {
        "cough": lambda li, _: overlap_round(li, bench, story, noise_burst(COUGH_S), ""),
        "wordless": lambda li, _: overlap_round(li, bench, story, burst, ""),
        "mm-hm": lambda li, _: overlap_round(li, bench, story, burst, "mm-hm"),
        "stop": lambda li, s: stop_round(li, bench, question, stop, s.name in ours),
        "mid-thought": lambda li, _: mid_thought_round(li, bench, sentence),
    }
    try:
        for _ in range(rounds):
            for scenario, run_round in runs.items():
                for system, listener in zip(systems, listeners, strict=True):
                    try:
                        got = await run_round(listener, system)
                    except TimeoutError:
                        got = None
                    by_scenario = results.turn_taking.setdefault(system.name, {})
                    by_scenario.setdefault(scenario, []).append(got and asdict(got))
                    await _until(partial(listener.quiet_since, SETTLE_S), 30, 0.05)
    finally:
        for listener in listeners:
            await listener.leave()
        stack.replies.clear()
        stack.replies.update(saved)
        stack.engines.chatterbox.backend.realtime_factor = 0.0  # type: ignore[attr-defined]


def _done(records: list[dict[str, Any] | None]) -> list[dict[str, Any]]:
    return [r for r in records if r is not None]


def _count(records: list[dict[str, Any] | None], key: str) -> str | None:
    done = _done(records)
    return f"{sum(bool(r[key]) for r in done)}/{len(done)}" if done else None


def _p(records: list[dict[str, Any] | None], key: str, q: float, needed: bool) -> str | None:
    values = [r[key] for r in _done(records) if r[key] is not None]
    if not values:
        return None if needed else "—"
    return f"{percentile(values, q):.0f}"


def _uninterrupted(records: list[dict[str, Any] | None]) -> str | None:
    done = _done(records)
    good = sum(r["whole"] and r["pause_ms"] is None and not r["other"] for r in done)
    return f"{good}/{len(done)}" if done else None


def _words(records: list[dict[str, Any] | None]) -> str | None:
    done = _done(records)
    if not done:
        return None
    return "/".join(str(sum(r[k] for r in done)) for k in ("heard", "lost", "repeated", "other"))


def _sound_rows(
    name: str, rounds: list[dict[str, Any] | None]
) -> list[tuple[str, str | None, str]]:
    return [
        (f"{name}: reply heard whole, in order (rounds)", _count(rounds, "whole"), "all"),
        (f"{name}: the bot's audio paused (rounds)", _count(rounds, "pause_ms"), ""),
        (f"{name}: sound start to audio paused at the listener p50 (ms)",
         _p(rounds, "pause_onset_ms", 50, False), "as fast as barge-in"),
        (f"{name}: sound start to audio paused at the listener p95 (ms)",
         _p(rounds, "pause_onset_ms", 95, False), "as fast as barge-in"),
        (f"{name}: pause length p50 (ms)", _p(rounds, "pause_ms", 50, False), ""),
        (f"{name}: reply words heard/lost/repeated/other (all rounds)", _words(rounds), "0 lost"),
    ]  # fmt: skip


def rows(by_scenario: dict[str, list[dict[str, Any] | None]]) -> list[tuple[str, str | None, str]]:
    """One system's turn-taking figures: (name, cell, goal); a None cell is missing."""
    mm = by_scenario.get("mm-hm", [])
    stop, mid = by_scenario.get("stop", []), by_scenario.get("mid-thought", [])
    failed = sum(r is None for records in by_scenario.values() for r in records)
    return [
        *_sound_rows("cough", by_scenario.get("cough", [])),
        *_sound_rows("wordless voice", by_scenario.get("wordless", [])),
        ("mm-hm: reply heard whole, in order (rounds)", _count(mm, "whole"), "all"),
        ("mm-hm: uninterrupted: no pause, no answer to it (rounds)", _uninterrupted(mm), "all"),
        ("stop: speech start to last old-reply audio p50 (ms)",
         _p(stop, "barge_in_ms", 50, True), "p95 ≤ 300"),
        ("stop: speech start to last old-reply audio p95 (ms)",
         _p(stop, "barge_in_ms", 95, True), "p95 ≤ 300"),
        ("stop: the next reply answered the new question (rounds)", _count(stop, "answered"),
         "all"),
        (f"mid-thought ({MID_THOUGHT_PAUSE_S} s pause): user cut off (rounds)",
         _count(mid, "cut_off"), "none"),
        ("mid-thought: voice to voice p50 (ms)", _p(mid, "voice_to_voice_ms", 50, True), ""),
        ("rounds that failed (no reply, or it never stopped)", str(failed), "0"),
    ]  # fmt: skip
