"""A turn's hops, read from the stand-ins' request logs and the listener's own clock.

Every process runs on this machine's loopback, so `time.monotonic()` (CLOCK_MONOTONIC)
is one clock for all of them: the stand-ins stamp what they receive and send, the
listener stamps when its last voiced audio left and when the reply's first audio came
back. Each hop is a moment, in milliseconds after the listener's last voiced audio.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.stats import percentile

# The moments of a turn, in the order they happen when nothing overlaps.
HOPS = (
    "stt_commit",
    "stt_final",
    "llm_request",
    "llm_first_token",
    "tts_request",
    "tts_first_audio",
    "heard",
)
LABELS = {
    "stt_commit": "STT commit sent by the bot",
    "stt_final": "final transcript out of the STT",
    "llm_request": "LLM request sent",
    "llm_first_token": "first LLM token out",
    "tts_request": "first TTS request sent",
    "tts_first_audio": "TTS first audio out",
    "heard": "first bot audio heard by the listener",
}
Entry = dict[str, Any]


@dataclass
class EngineLogs:
    """The stand-ins' request logs (`RequestLog.requests`) for one turn's window."""

    stt: Sequence[Entry]
    llm: Sequence[Entry]
    tts: Sequence[Entry]


def _ms(at: float | None, origin: float) -> float | None:
    return None if at is None else round((at - origin) * 1000, 1)


def _first(entries: Sequence[Entry], kind: str, *, after: float = float("-inf")) -> Entry | None:
    return next((e for e in entries if e.get("kind") == kind and e["at"] >= after), None)


def _of_request(entries: Sequence[Entry], kind: str, request: str | None) -> Entry | None:
    return next((e for e in entries if e.get("kind") == kind and e.get("request") == request), None)


def _answered(entries: Sequence[Entry], kind: str, before: float) -> Entry | None:
    """The last request of `kind` sent before `before` that its client did not close."""
    closed = _closed(entries)
    sent = [e for e in entries if e.get("kind") == kind and e["at"] < before]
    kept = [e for e in sent if e.get("request") not in closed]
    return kept[-1] if kept else None


def turn_hops(speech_end: float, heard: float | None, logs: EngineLogs) -> dict[str, float | None]:
    """Each hop's moment in ms after `speech_end`; None for a hop that did not happen.

    The reply is the one that was heard: the last LLM request before the first audio
    heard that was not closed by the bot (an abandoned preemptive request is skipped),
    and the first TTS request after that request's first token.
    """
    until = heard if heard is not None else float("inf")
    commits = [e for e in logs.stt if e.get("kind") in ("utterance", "transcription")]
    commit = next((e for e in reversed(commits) if e["at"] < until), None)
    final = _first(logs.stt, "transcribed", after=commit["at"]) if commit else None
    request = _answered(logs.llm, "chat", until)
    token = _of_request(logs.llm, "chat_first_token", request.get("request") if request else None)
    speech = None
    if token is not None:
        closed = _closed(logs.tts)
        speech = next(
            (
                e
                for e in logs.tts
                if e.get("kind") == "speech"
                and token["at"] <= e["at"] < until
                and e.get("request") not in closed
            ),
            None,
        )
    audio = _of_request(logs.tts, "speech_first_audio", speech.get("request") if speech else None)
    moments = {
        "stt_commit": commit,
        "stt_final": final,
        "llm_request": request,
        "llm_first_token": token,
        "tts_request": speech,
        "tts_first_audio": audio,
    }
    hops = {
        name: _ms(entry["at"] if entry else None, speech_end) for name, entry in moments.items()
    }
    hops["heard"] = _ms(heard, speech_end)
    return hops


def _closed(entries: Sequence[Entry]) -> set[str | None]:
    return {e.get("request") for e in entries if e.get("kind", "").endswith("_cancelled")}


def summary(turns: Sequence[dict[str, float | None]]) -> dict[str, dict[str, float | None]]:
    """Per hop: p50/p95 of its moment and of its step from the hop before it."""
    out: dict[str, dict[str, float | None]] = {}
    previous: str | None = None
    for name in HOPS:
        moments = [at for t in turns if (at := t.get(name)) is not None]
        steps = [
            at - before
            for t in turns
            if previous
            and (at := t.get(name)) is not None
            and (before := t.get(previous)) is not None
        ]
        out[name] = {
            "at_p50": _p(moments, 50),
            "at_p95": _p(moments, 95),
            "step_p50": _p(steps, 50) if previous else _p(moments, 50),
            "step_p95": _p(steps, 95) if previous else _p(moments, 95),
            "n": len(moments),
        }
        previous = name
    return out


def _p(values: list[float], q: float) -> float | None:
    return round(percentile(values, q), 1) if values else None


def missing(turns: Sequence[dict[str, float | None]]) -> list[str]:
    """`turn N: hop` for every hop a turn lacks."""
    return [
        f"turn {i + 1}: {name}"
        for i, turn in enumerate(turns)
        for name in HOPS
        if turn.get(name) is None
    ]
