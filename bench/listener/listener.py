"""A person in the room, as the benchmarks see one: speaks WAVs in real time, listens.

It joins through the session server's `/connect` like the browser client, so the bot is
a real bot spawned by the real server, and it times the two moments only a listener
knows: when its last voiced audio left, and when the bot's first audio came back.
The bot's own figures for the turn arrive as the `turn-metrics` messages it sends
every client.
"""

import asyncio
import bisect
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import numpy as np

from engines import tone
from tests.participant import LISTEN_RATE, MIC_RATE, Participant

# A 10 ms window counts as voiced above this RMS (about -40 dBFS); espeak-ng pads
# its sentences with exact silence.
VOICED_RMS = 330.0
# A received frame holds bot audio when a sample exceeds this (the tone code's beeps
# peak at ~9800; Opus noise on silence stays far below).
HEARD_PEAK = 1500
WINDOW = MIC_RATE // 100


def last_voiced_sample(pcm: bytes) -> int:
    """Index just past the last voiced 10 ms window of 16 kHz PCM16 speech."""
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype=np.int16).astype(np.float32)
    count = len(samples) // WINDOW
    if count == 0:
        return 0
    rms = np.sqrt((samples[: count * WINDOW].reshape(count, WINDOW) ** 2).mean(axis=1))
    voiced = np.flatnonzero(rms > VOICED_RMS)
    return int((voiced[-1] + 1) * WINDOW) if voiced.size else 0


def voiced(pcm: bytes) -> bytes:
    """16 kHz PCM16 speech without its closing silence."""
    return pcm[: last_voiced_sample(pcm) * 2]


def _has_sound(pcm: bytes) -> bool:
    samples = np.frombuffer(pcm, dtype=np.int16)
    return bool(samples.size) and int(np.abs(samples.astype(np.int32)).max()) > HEARD_PEAK


@dataclass
class Said:
    """One utterance the listener spoke, and when its last voiced audio left."""

    started_at: float
    speech_end: float


@dataclass
class HeardTurn:
    """What the listener observed of one turn."""

    speech_end: float
    heard: float | None
    words: list[int]
    bot: dict[str, Any] | None


@dataclass
class Listener:
    """A LiveKit participant in one room served by one bot."""

    participant: Participant
    room: str
    greeting: str
    _seen_metrics: int = field(default=0)
    # When each received frame carrying sound arrived, and how many frames were looked at:
    # every frame is examined once, however often the benchmarks poll.
    _sounds: list[float] = field(default_factory=list)
    _examined: int = field(default=0)

    @classmethod
    async def join(cls, server_url: str, greeting: str, timeout_s: float = 30) -> "Listener":
        """`POST /connect`, join the room, and wait until the greeting is over."""
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{server_url}/connect", json={}) as response:
                response.raise_for_status()
                body = await response.json()
        participant = Participant()
        await participant.join(body["url"], body["token"])
        listener = cls(participant, body["room"], greeting)
        # The bot reports the greeting's turn once it has written the last of its audio,
        # which is before the listener has heard it all (or, when short, any of it).
        await listener._wait(
            lambda: listener.bot_metrics() and listener.first_sound(0.0) is not None,
            timeout_s,
            "the greeting",
        )
        await listener._wait(lambda: listener.quiet_since(0.5), timeout_s, "its end")
        listener._seen_metrics = len(listener.bot_metrics())
        return listener

    async def say(self, pcm: bytes) -> Said:
        """Speak 16 kHz PCM16 at real-time pace; return once its last voiced audio left."""
        first = self.participant.queued_samples
        started_at = time.monotonic()
        self.participant.say(pcm)
        last = first + max(1, last_voiced_sample(pcm)) - 1
        await self._wait(lambda: self.participant.sent_at(last), len(pcm) / 32000 + 5, "speech")
        speech_end = self.participant.sent_at(last)
        assert speech_end is not None
        return Said(started_at, speech_end)

    async def turn(self, pcm: bytes, reply: str, timeout_s: float = 20) -> HeardTurn:
        """Ask, wait for the reply to be heard through, and return what was observed.

        A turn whose reply never comes ends after `timeout_s` with no `heard` moment.
        """
        said = await self.say(pcm)
        expected = tone.code(reply)
        try:
            await self._wait(lambda: self._new_metrics(), timeout_s, "the bot's turn metrics")
            await self._wait(
                lambda: self.words(said.started_at)[-len(expected) :] == expected,
                3,
                "the whole reply",
            )
        except TimeoutError:
            pass
        metrics = self._new_metrics()
        self._seen_metrics = len(self.bot_metrics())
        return HeardTurn(
            speech_end=said.speech_end,
            heard=self.first_sound(said.speech_end),
            words=self.words(said.started_at),
            bot=metrics[-1] if metrics else None,
        )

    def words(self, since: float = 0.0) -> list[int]:
        """The tone-coded words heard since a moment."""
        return tone.decode(self.participant.audio(since), LISTEN_RATE)

    def sounds(self, since: float) -> list[float]:
        """When each frame carrying sound arrived after `since`, in order."""
        return self._sounds[self._first_after(since) :]

    def first_sound(self, since: float) -> float | None:
        """When the first frame carrying sound arrived after `since`."""
        index = self._first_after(since)
        return self._sounds[index] if index < len(self._sounds) else None

    def stopped_at(self, since: float, gap_s: float) -> float | None:
        """The last sound before the first silence of `gap_s` after `since`, once known.

        `since` itself when nothing was playing then.
        """
        loud = self.sounds(since - 0.1)
        for before, after in zip([since, *loud], [*loud, time.monotonic()], strict=True):
            if after - before >= gap_s:
                return before
        return None

    def quiet_since(self, seconds: float) -> bool:
        """Whether nothing was heard for the last `seconds`."""
        return self.first_sound(time.monotonic() - seconds) is None

    def _first_after(self, since: float) -> int:
        """Index in `_sounds` of the first sound after `since`, new frames examined first."""
        heard = self.participant.heard
        self._sounds += [at for at, pcm in heard[self._examined :] if _has_sound(pcm)]
        self._examined = len(heard)
        return bisect.bisect_right(self._sounds, since)

    def bot_metrics(self) -> list[dict[str, Any]]:
        """The user turns' `turn-metrics` records the bot sent, in order."""
        out = []
        for message in self.participant.messages:
            data = message.get("data")
            if isinstance(data, dict) and data.get("type") == "turn-metrics":
                out.append(data)
        return out

    def _new_metrics(self) -> list[dict[str, Any]]:
        fresh = self.bot_metrics()[self._seen_metrics :]
        return [m for m in fresh if m.get("voice_to_voice_ms") is not None]

    async def leave(self) -> None:
        """Leave the room."""
        await self.participant.leave()

    @staticmethod
    async def _wait(condition: Any, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout_s:.0f}s for {what}")
            await asyncio.sleep(0.02)
