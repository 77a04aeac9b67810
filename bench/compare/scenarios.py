"""The scenarios, each run on every system in turn, turn by turn where it can.

A listener is `bench.listener`'s: a LiveKit participant that speaks espeak-ng speech
in real time and times what it hears from one monotonic clock. Its per-frame work is
one peak check (the tone-code words are decoded once per reply, after it ends).
"""

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from bench.compare.measure import TreeMeter, cpu_seconds
from bench.compare.systems import Bench, System
from bench.listener.listener import VOICED_RMS, WINDOW, Listener
from bench.listener.run import EngineDelays
from tests.participant import Participant
from tests.stack import GREETING

PAUSE_S = 0.6  # quiet after a reply before the next question
GAP_S = 0.25  # a silence this long after barge-in speech means the bot stopped
INTERRUPT_AFTER_S = 0.8  # how far into a reply the listener barges in


async def wait_for(condition: Callable[[], object], timeout_s: float) -> None:
    """Poll every 20 ms until `condition` holds; TimeoutError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError
        await asyncio.sleep(0.02)


def first_voiced_sample(pcm: bytes) -> int:
    """Index of the first voiced 10 ms window of 16 kHz PCM16 speech."""
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)
    count = len(samples) // WINDOW
    rms = np.sqrt((samples[: count * WINDOW].reshape(count, WINDOW) ** 2).mean(axis=1))
    voiced = np.flatnonzero(rms > VOICED_RMS)
    return int(voiced[0] * WINDOW) if voiced.size else 0


async def speak_over(participant: Participant, pcm: bytes) -> float:
    """Say `pcm` now (over whatever plays); return when its first voiced sample left."""
    first = participant.queued_samples + first_voiced_sample(pcm)
    participant.say(pcm)
    await wait_for(lambda: participant.sent_at(first) is not None, 10)
    started = participant.sent_at(first)
    assert started is not None
    return started


class Joined(NamedTuple):
    """A room joined on a system, timed from asking for it."""

    listener: Listener
    # Until the listener was in the room: the client's own share, which a person's
    # browser spends on their machine, not on the bots'.
    in_room_ms: float
    # Until the bot's first audio was heard.
    first_audio_ms: float


async def join(system: System, timeout_s: float = 40) -> Joined:
    """Open a room on `system`, join it, wait for the greeting to end."""
    asked = time.monotonic()
    url, room, token = await system.open_room()
    participant = Participant()
    try:
        await participant.join(url, token)
        in_room = time.monotonic()
        listener = Listener(participant, room, GREETING)
        await wait_for(lambda: listener.first_sound(asked) is not None, timeout_s)
        heard = listener.first_sound(asked)
        assert heard is not None
        await wait_for(lambda: listener.quiet_since(PAUSE_S), timeout_s)
    except BaseException:
        # A room nobody is heard in must not keep its bot (and the machine) busy.
        await participant.leave()
        raise
    return Joined(listener, (in_room - asked) * 1000, (heard - asked) * 1000)


async def turn(listener: Listener, question: bytes, timeout_s: float = 20) -> float | None:
    """Ask; ms from the last voiced audio sent to the first reply audio heard.

    None when no reply came, or when the listener itself could not speak or hear the
    reply out (its connection broke on a saturated machine): a failed turn, counted as such.
    """
    try:
        said = await listener.say(question)
        await wait_for(lambda: listener.first_sound(said.speech_end) is not None, timeout_s)
        heard = listener.first_sound(said.speech_end)
        assert heard is not None
        await wait_for(lambda: listener.quiet_since(PAUSE_S), 60)
    except TimeoutError:
        return None
    return (heard - said.speech_end) * 1000


async def barge_in(
    listener: Listener, question: bytes, interruption: bytes, timeout_s: float = 20
) -> float | None:
    """Ask, interrupt the reply; ms from the interruption's first voice to the last bot audio.

    None when a step timed out, as in `turn`.
    """
    participant = listener.participant
    try:
        said = await listener.say(question)
        await wait_for(lambda: listener.first_sound(said.speech_end) is not None, timeout_s)
        await asyncio.sleep(INTERRUPT_AFTER_S)
        started = await speak_over(participant, interruption)
        await wait_for(lambda: listener.stopped_at(started, GAP_S) is not None, timeout_s)
        stopped = listener.stopped_at(started, GAP_S)
        assert stopped is not None
        await wait_for(lambda: listener.quiet_since(1.0), 60)
    except TimeoutError:
        return None
    return (stopped - started) * 1000


@dataclass
class Speech:
    """What the listeners say."""

    question: bytes
    interruption: bytes


@dataclass
class Results:
    """Every figure, by scenario and system."""

    latency: dict[str, dict[str, list[float | None]]] = field(default_factory=dict)
    barge_in: dict[str, list[float | None]] = field(default_factory=dict)
    concurrency: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    burst: dict[str, dict[int, list[float | None]]] = field(default_factory=dict)
    burst_in_room: dict[str, dict[int, list[float | None]]] = field(default_factory=dict)
    # By system, then scenario: one record per round (None: the round failed).
    turn_taking: dict[str, dict[str, list[dict[str, Any] | None]]] = field(default_factory=dict)


async def latency_and_barge_in(
    bench: Bench,
    speech: Speech,
    turns: int,
    scenarios: dict[str, EngineDelays],
    long_reply: str,
    results: Results,
    barge_ins: bool = True,
) -> None:
    """One room per system; scenarios in order, systems alternating turn by turn."""
    systems = bench.latency_systems
    listeners = [(await join(system)).listener for system in systems]
    try:
        for scenario, delays in scenarios.items():
            delays.apply(bench.stack.engines)
            by_system = results.latency.setdefault(scenario, {})
            for _ in range(turns):
                for system, listener in zip(systems, listeners, strict=True):
                    by_system.setdefault(system.name, []).append(
                        await turn(listener, speech.question)
                    )
        queue = bench.stack.reply_queue
        normal = list(queue)
        queue[:] = [long_reply]
        for _ in range(turns if barge_ins else 0):
            for system, listener in zip(systems, listeners, strict=True):
                results.barge_in.setdefault(system.name, []).append(
                    await barge_in(listener, speech.question, speech.interruption)
                )
        queue[:] = normal
    finally:
        for listener in listeners:
            await listener.leave()


def questions_per_room(rooms: int, turns: int, level_turns: int) -> int:
    """Questions each of `rooms` asks: `turns`, or more for `level_turns` in all.

    A p95 over a handful of turns is their slowest: one room's three questions against
    ten rooms' thirty would compare a maximum with a percentile.
    """
    return max(turns, -(-level_turns // rooms))


async def _converse(
    listener: Listener, question: bytes, turns: int, after_s: float
) -> list[float | None]:
    await asyncio.sleep(after_s)
    return [await turn(listener, question) for _ in range(turns)]


async def concurrency(
    bench: Bench,
    speech: Speech,
    levels: list[int],
    turns: int,
    results: Results,
    settle_s: float,
    level_turns: int = 1,
    stagger_s: float = 0.0,
) -> None:
    """`n` rooms at once on each system, `turns` questions each; latency and cost per room.

    Each level asks at least `level_turns` questions in all (`questions_per_room`), so
    every level's p95 comes from as many turns as one room's does. Between levels,
    `settle_s` lets the bots leave and the warm pools refill. With `stagger_s` 0 every
    room asks at the same moment, so every bot's turn lands on the others' (the worst
    case); otherwise room i starts `i * stagger_s / n` later, spreading the turns evenly
    over `stagger_s`, as callers who do not talk in step would be.
    """
    sfu = bench.stack.livekit.process.pid
    for n in levels:
        for system in bench.systems:
            joined = await asyncio.gather(*(join(system) for _ in range(n)), return_exceptions=True)
            listeners = [j.listener for j in joined if not isinstance(j, BaseException)]
            bots = TreeMeter([system.root_pid], include_roots=system.rooms_in_root)
            server = TreeMeter([sfu], include_roots=True)
            me = cpu_seconds(os.getpid())
            started = time.monotonic()
            bots.start(started)
            server.start(started)
            asks = questions_per_room(n, turns, level_turns)
            talks = asyncio.gather(
                *(
                    _converse(li, speech.question, asks, i * stagger_s / len(listeners))
                    for i, li in enumerate(listeners)
                )
            )
            while not talks.done():
                bots.sample()
                await asyncio.wait([talks], timeout=1.0)
            ended = time.monotonic()
            usage, sfu_usage = bots.stop(ended), server.stop(ended)
            listeners_cpu = cpu_seconds(os.getpid()) - me
            v2v = [ms for talk in talks.result() for ms in talk]
            got = [ms for ms in v2v if ms is not None]
            p50, p95 = (_percentile(got, q) for q in (50, 95))
            print(
                f"{n} at once, {system.name}: voice to voice p50/p95 "
                f"{p50 and round(p50)}/{p95 and round(p95)} ms, {len(v2v) - len(got)} failed",
                flush=True,
            )
            results.concurrency.setdefault(system.name, {})[n] = {
                "voice_to_voice_ms": v2v,
                "p50_ms": p50,
                "p95_ms": p95,
                "failures": (n - len(listeners)) * turns + v2v.count(None),
                "cpu_per_session_pct": 100 * usage.cores / n,
                "rss_per_session_mb": _per_session(usage.active_rss_mb, system, n),
                "pss_per_session_mb": _per_session(usage.active_pss_mb, system, n),
                "bench_process_cpu_pct": 100 * listeners_cpu / (ended - started),
                "sfu_cpu_pct": 100 * sfu_usage.cores,
            }
            for listener in listeners:
                await listener.leave()
            await asyncio.sleep(settle_s)


async def burst(
    bench: Bench, levels: list[int], results: Results, settle_s: float, repeat: int = 1
) -> None:
    """`n` rooms asked for at once, `repeat` times: ms until each room's first bot audio is heard.

    Also when each listener was in its room: on this machine the listeners share the
    cores with the bots, so a burst slows their own joining too.
    Between bursts, `settle_s` lets the warm pools refill.
    """
    for n in levels:
        for _ in range(repeat):
            for system in bench.systems:
                rooms = await burst_once(system, n)
                for figures, measured in (
                    (results.burst, [r and r.first_audio_ms for r in rooms]),
                    (results.burst_in_room, [r and r.in_room_ms for r in rooms]),
                ):
                    figures.setdefault(system.name, {}).setdefault(n, []).extend(measured)
                await asyncio.sleep(settle_s)


async def burst_once(system: System, n: int) -> list[Joined | None]:
    """`n` rooms asked for at once, each joined and left again; None for one that failed."""
    joined = await asyncio.gather(*(join(system) for _ in range(n)), return_exceptions=True)
    rooms = [None if isinstance(j, BaseException) else j for j in joined]
    for room in rooms:
        if room is not None:
            await room.listener.leave()
    return rooms


def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def _per_session(megabytes: list[float], system: System, rooms: int) -> float | None:
    """The memory of the processes serving the rooms, per room.

    One process a room: their mean. Rooms in one process: its memory over the rooms.
    """
    if not megabytes:
        return None
    return sum(megabytes) / rooms if system.rooms_in_root else float(np.mean(megabytes))
