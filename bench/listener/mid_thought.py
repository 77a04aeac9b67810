"""Which turn-stop strategy waits for a user who pauses mid-thought, and at what cost.

`python -m bench.listener --utterances mid-thought`, as the listener hears it.
For each `TURN_STOP_STRATEGY` (`speech_timeout` with the unfinished-phrase hold, and
`smart_turn`) one stack serves rounds of two utterances: a whole question, and a
sentence that pauses mid-thought ("I'd like to book a table for" … "four people", two
espeak-ng halves with 0.5 or 0.7 s between the voices). A mid-thought turn is cut off
when bot audio is heard before the second half has been spoken, or when the reply heard
is not the one to the whole sentence. Voice to voice is from the last voiced audio sent
to the first bot audio heard after it.
"""

import asyncio
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.listener.listener import Listener
from bench.listener.run import PAUSE_BETWEEN_TURNS_S, QUESTION, REPLY, TRANSCRIPT, BenchOptions
from bench.speech import speech
from bench.stats import percentile
from engines import tone
from tests.speech import with_pause
from tests.stack import GREETING, start_stack

STRATEGIES = ("speech_timeout", "smart_turn")
FIRST_HALF, SECOND_HALF = "I'd like to book a table for", "four people."
PAUSES_S = (0.5, 0.7)
BOOKED = "Booking confirmed for four."
CUT_OFF = "Sorry, for how many?"


@dataclass
class Utterance:
    """One utterance and what the listener observed of it."""

    kind: str  # "normal" or "mid-thought"
    pause_s: float | None
    voice_to_voice_ms: float | None
    cut_off: bool


def _ms(start: float, end: float | None) -> float | None:
    return None if end is None else round((end - start) * 1000, 1)


async def _ask(
    listener: Listener, pcm: bytes, reply: str, timeout_s: float
) -> tuple[float | None, float | None, bool]:
    """Say `pcm`; (v2v ms, first sound heard while speaking, the reply heard whole)."""
    heard = await listener.turn(pcm, reply, timeout_s)
    spoke_from = heard.speech_end - len(pcm) / 32000
    early = listener.first_sound(spoke_from)
    during = early if early is not None and early < heard.speech_end else None
    expected = tone.code(reply)
    whole = heard.words[-len(expected) + 1 :] == expected[1:]
    if reply == BOOKED and _contains(heard.words, tone.code(CUT_OFF)[1:]):
        whole = False  # the first half was answered on its own
    while not listener.quiet_since(PAUSE_BETWEEN_TURNS_S):
        await asyncio.sleep(0.05)
    return _ms(heard.speech_end, heard.heard), during, whole


def _contains(words: list[int], part: list[int]) -> bool:
    return any(words[i : i + len(part)] == part for i in range(len(words) - len(part) + 1))


async def run_strategy(
    strategy: str, rounds: int, options: BenchOptions, folder: Path
) -> list[Utterance]:
    """One stack with `strategy`: `rounds` of a whole question and a mid-thought one."""
    question = speech(QUESTION)
    halves = speech(FIRST_HALF), speech(SECOND_HALF)
    overrides = {
        "log_level": "INFO",
        "max_concurrent_sessions": 2,
        **options.bot,
        "turn_stop_strategy": strategy,
    }
    out: list[Utterance] = []
    folder.mkdir(parents=True, exist_ok=True)
    async for stack in start_stack(folder, **overrides):
        options.delays.apply(stack.engines)
        # Longest key first: the whole sentence contains the half.
        stack.replies.update({"four people": BOOKED, "table for": CUT_OFF, "paris": REPLY})
        listener = await Listener.join(stack.server.url, GREETING)
        try:
            for i in range(rounds):
                stack.transcriber.script[:] = [TRANSCRIPT]
                v2v, during, whole = await _ask(listener, question, REPLY, options.turn_timeout_s)
                out.append(Utterance("normal", None, v2v, during is not None or not whole))
                pause = PAUSES_S[i % len(PAUSES_S)]
                # Each half is its own stretch of voice to the VAD: its own transcript.
                stack.transcriber.script[:] = ["book a table for", "four people", ""]
                pcm = with_pause(*halves, pause)
                v2v, during, whole = await _ask(listener, pcm, BOOKED, options.turn_timeout_s)
                out.append(Utterance("mid-thought", pause, v2v, during is not None or not whole))
        finally:
            await listener.leave()
    return out


async def run(options: BenchOptions, folder: Path) -> dict[str, list[Utterance]]:
    """Every strategy in turn, each on its own stack."""
    rounds = max(1, options.turns // 2)
    return {s: await run_strategy(s, rounds, options, folder / s) for s in STRATEGIES}


def _p(values: list[float], q: float) -> float | None:
    return round(percentile(values, q), 1) if values else None


def summary(results: dict[str, list[Utterance]]) -> dict[str, Any]:
    """Per strategy and kind: cut-offs and voice to voice p50/p95."""
    out: dict[str, Any] = {}
    for strategy, utterances in results.items():
        for kind in ("normal", "mid-thought"):
            mine = [u for u in utterances if u.kind == kind]
            v2v = [u.voice_to_voice_ms for u in mine if u.voice_to_voice_ms is not None]
            out.setdefault(strategy, {})[kind] = {
                "n": len(mine),
                "cut_off": sum(u.cut_off for u in mine),
                "v2v_p50": _p(v2v, 50),
                "v2v_p95": _p(v2v, 95),
            }
    return out


def table(result: dict[str, Any]) -> str:
    """Markdown: one row per strategy."""
    rows = [
        "| strategy | mid-thought cut off | mid-thought v2v p50/p95 | normal cut off "
        "| normal v2v p50/p95 |",
        "|---|---|---|---|---|",
    ]
    for strategy, kinds in result["summary"].items():
        mid, normal = kinds["mid-thought"], kinds["normal"]
        rows.append(
            f"| {strategy} | {mid['cut_off']}/{mid['n']} | {mid['v2v_p50']}/{mid['v2v_p95']} "
            f"| {normal['cut_off']}/{normal['n']} | {normal['v2v_p50']}/{normal['v2v_p95']} |"
        )
    return "\n".join(rows)


def as_json(results: dict[str, list[Utterance]]) -> dict[str, list[dict[str, Any]]]:
    """Every utterance, for the results file."""
    return {s: [asdict(u) for u in us] for s, us in results.items()}
