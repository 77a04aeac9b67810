"""`python -m bench.listener --barge-in`: how fast the bot's voice is gone at the listener.

Per turn the listener asks a question whose answer is long, lets it play for a while,
then says "Stop, what time is it?" over it. It times, on the machine's one monotonic
clock, from its first voiced sample of the interruption leaving to the last audio of the
old reply it heard (the first `GAP_S` of silence ends it), and reads the bot's own
`barge_in_cutoff_ms` for the same turn from the `turn-metrics` messages. The answer to
the interruption must then be heard too, or the turn counts as failed.
"""

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.compare.scenarios import GAP_S, INTERRUPT_AFTER_S, speak_over
from bench.listener.listener import Listener
from bench.listener.run import PAUSE_BETWEEN_TURNS_S, BenchOptions
from bench.speech import speech
from bench.stats import percentile
from engines import tone
from tests.stack import GREETING, Stack, start_stack

QUESTION = "What is the weather like in Paris this afternoon?"
INTERRUPTION = "Stop, what time is it?"
LONG_REPLY = " ".join(["This reply goes on for a long while so that it can be interrupted."] * 4)
ANSWER = "It is three o'clock."
GOAL_P95_MS = 300.0
GOAL_BOT_GAP_MS = 60.0


@dataclass
class BargeIn:
    """One interruption, as the listener and the bot saw it."""

    listener_ms: float | None  # first voiced sample sent -> last old-reply audio heard
    bot_ms: float | None  # the bot's `barge_in_cutoff_ms`
    answer_heard: bool
    # The split: first voiced sample sent -> the bot's VAD heard speech (its STT opened
    # an utterance), and from there -> the last old-reply audio heard.
    vad_ms: float | None = None
    after_vad_ms: float | None = None


async def _wait(condition: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def _cutoff(listener: Listener, seen: int) -> float | None:
    """The bot's `barge_in_cutoff_ms` among the turn records after the first `seen`."""
    cut = [m.get("barge_in_cutoff_ms") for m in listener.bot_metrics()[seen:]]
    return next((ms for ms in cut if ms is not None), None)


def _ms(start: float, end: float | None) -> float | None:
    return None if end is None else round((end - start) * 1000, 1)


async def interrupt(
    listener: Listener,
    question: bytes,
    interruption: bytes,
    timeout_s: float,
    stack: Stack,
    bot_reports: bool = True,
) -> BargeIn:
    """Ask, talk over the long reply, and time how fast it goes.

    `bot_reports=False` for a bot that sends no `turn-metrics` (the compare bench's peer).

    The VAD may part an utterance at a short pause: the STT stand-in gives each
    utterance's words to its first part and nothing to the rest, and the interruption's
    words are scripted only once the long reply plays.
    """
    failed = BargeIn(None, None, False)
    stack.transcriber.script[:] = [QUESTION.lower(), ""]
    said = await listener.say(question)
    if not await _wait(lambda: listener.first_sound(said.speech_end) is not None, timeout_s):
        return failed
    stack.transcriber.script[:] = ["stop what time is it", ""]
    await asyncio.sleep(INTERRUPT_AFTER_S)
    seen = len(listener.bot_metrics())
    started = await speak_over(listener.participant, interruption)
    if not await _wait(lambda: listener.stopped_at(started, GAP_S) is not None, timeout_s):
        return failed
    stopped = listener.stopped_at(started, GAP_S)
    assert stopped is not None
    answer = tone.code(ANSWER)
    # The first beep after a silence is sometimes garbled by the receiver.
    heard = await _wait(
        lambda: listener.words(stopped + 0.05)[-len(answer) + 1 :] == answer[1:], timeout_s
    )
    if bot_reports:
        await _wait(lambda: _cutoff(listener, seen) is not None, 3)
    await _wait(lambda: listener.quiet_since(PAUSE_BETWEEN_TURNS_S), 30)
    opened = next(
        (
            e["at"]
            for e in stack.engines.voxtral.log.requests
            if e.get("kind") == "utterance_open" and e["at"] > started
        ),
        None,
    )
    return BargeIn(
        listener_ms=_ms(started, stopped),
        bot_ms=_cutoff(listener, seen),
        answer_heard=heard,
        vad_ms=_ms(started, opened),
        after_vad_ms=None if opened is None else _ms(opened, stopped),
    )


async def run(options: BenchOptions, folder: Path) -> list[BargeIn]:
    """Start the stack, hold `options.turns` interrupted turns, stop it."""
    question, interruption = speech(QUESTION), speech(INTERRUPTION)
    overrides = {"log_level": "INFO", "max_concurrent_sessions": 2, **options.bot}
    results: list[BargeIn] = []
    async for stack in start_stack(folder, **overrides):
        options.delays.apply(stack.engines)
        stack.replies.update({"paris": LONG_REPLY, "time": ANSWER})
        listener = await Listener.join(stack.server.url, GREETING)
        try:
            for _ in range(options.turns):
                results.append(
                    await interrupt(
                        listener,
                        question,
                        interruption,
                        options.turn_timeout_s,
                        stack,
                    )
                )
        finally:
            await listener.leave()
    return results


def _p(values: list[float], q: float) -> float | None:
    return round(percentile(values, q), 1) if values else None


def _p_of(values: list[float | None]) -> dict[str, float | None]:
    known = [v for v in values if v is not None]
    return {"p50": _p(known, 50), "p95": _p(known, 95)}


def summary(turns: list[BargeIn]) -> dict[str, Any]:
    """p50/p95 of each side, the listener-minus-bot gap, and the count of whole turns."""
    heard = [t.listener_ms for t in turns if t.listener_ms is not None]
    bot = [t.bot_ms for t in turns if t.bot_ms is not None]
    both = [(t.listener_ms, t.bot_ms) for t in turns]
    gaps = [a - b for a, b in both if a is not None and b is not None]
    return {
        "listener_ms": {"p50": _p(heard, 50), "p95": _p(heard, 95), "goal_p95": GOAL_P95_MS},
        "bot_cutoff_ms": {"p50": _p(bot, 50), "p95": _p(bot, 95)},
        "listener_minus_bot_ms": {"p50": _p(gaps, 50), "p95": _p(gaps, 95)},
        "vad_ms": _p_of([t.vad_ms for t in turns]),
        "after_vad_ms": _p_of([t.after_vad_ms for t in turns]),
        "answers_heard": sum(t.answer_heard for t in turns),
        "turns": len(turns),
    }


def table(result: dict[str, Any]) -> str:
    """The figures as a few lines of markdown."""
    s = result["summary"]
    heard, bot, gap = s["listener_ms"], s["bot_cutoff_ms"], s["listener_minus_bot_ms"]
    return "\n".join(
        [
            "| barge-in, from the first voiced sample sent | p50 | p95 |",
            "|---|---|---|",
            f"| last old-reply audio heard by the listener | {heard['p50']} | {heard['p95']} |",
            f"| bot's barge_in_cutoff_ms | {bot['p50']} | {bot['p95']} |",
            f"| listener minus bot | {gap['p50']} | {gap['p95']} |",
            f"| split: bot's VAD hears speech | {s['vad_ms']['p50']} | {s['vad_ms']['p95']} |",
            f"| split: VAD to last audio heard | {s['after_vad_ms']['p50']} "
            f"| {s['after_vad_ms']['p95']} |",
            "",
            f"goal: listener p95 ≤ {GOAL_P95_MS:.0f} ms, gap ≤ {GOAL_BOT_GAP_MS:.0f} ms; "
            f"{s['answers_heard']}/{s['turns']} answers to the interruption heard",
        ]
    )


def missing(turns: list[BargeIn]) -> list[str]:
    """`turn N: figure` for every figure a turn lacks."""
    out = []
    for i, t in enumerate(turns):
        figures = {"listener": t.listener_ms, "bot": t.bot_ms, "answer": t.answer_heard or None}
        out += [f"turn {i + 1}: {name}" for name, value in figures.items() if value is None]
    return out
