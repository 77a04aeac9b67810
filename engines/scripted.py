"""Scripted backends for the stand-ins: deterministic replies, tone-coded speech."""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from engines import tone

BYTES_PER_SECOND_16K = 16000 * 2


def _reply_picker(replies: list[str] | Callable[[str], str]) -> Callable[[str], str]:
    """Take replies from a list in order (the last one repeats), or compute them.

    The list is used in place, so its owner can script further replies while serving.
    """
    if callable(replies):
        return replies

    def next_reply(_: str) -> str:
        if not replies:
            return ""
        return replies.pop(0) if len(replies) > 1 else replies[0]

    return next_reply


class ScriptedTranscriptionStream:
    """Reveals a scripted transcript a word at a time as audio arrives."""

    def __init__(self, transcript: str, seconds_per_word: float) -> None:
        self._words = transcript.split()
        self._bytes_per_word = max(2, int(seconds_per_word * BYTES_PER_SECOND_16K))
        self._received = 0
        self._revealed = 0

    async def feed(self, pcm: bytes) -> str:
        """Reveal one more word per `seconds_per_word` of audio, keeping the last back."""
        self._received += len(pcm)
        due = min(self._received // self._bytes_per_word, max(0, len(self._words) - 1))
        return self._reveal(due)

    async def finish(self) -> str:
        """Reveal whatever is left."""
        return self._reveal(len(self._words))

    def _reveal(self, upto: int) -> str:
        if upto <= self._revealed:
            return ""
        text = " ".join(self._words[self._revealed : upto])
        prefix = " " if self._revealed else ""
        self._revealed = upto
        return prefix + text


class ScriptedTranscriber:
    """Transcribes every utterance as the next scripted text."""

    def __init__(
        self, transcripts: list[str] | Callable[[str], str], seconds_per_word: float = 0.25
    ) -> None:
        self._next = _reply_picker(transcripts)
        self._seconds_per_word = seconds_per_word

    def open_stream(self) -> ScriptedTranscriptionStream:
        """Start the next utterance."""
        return ScriptedTranscriptionStream(self._next(""), self._seconds_per_word)


class ToneSynthesizer:
    """Speaks text in the tone code, optionally at a given speed relative to real time."""

    def __init__(
        self, sample_rate: int = 24000, realtime_factor: float = 0.0, chunk_secs: float = 0.04
    ) -> None:
        self.sample_rate = sample_rate
        self.realtime_factor = realtime_factor
        self._chunk_bytes = int(chunk_secs * sample_rate) * 2

    async def synthesize(
        self, text: str, voice: str, options: dict[str, Any]
    ) -> AsyncIterator[bytes]:
        """Yield the tone code of the text in small chunks, paced if asked to."""
        audio = tone.encode(text, self.sample_rate)
        for start in range(0, len(audio), self._chunk_bytes):
            chunk = audio[start : start + self._chunk_bytes]
            if self.realtime_factor:
                await asyncio.sleep(len(chunk) / 2 / self.sample_rate * self.realtime_factor)
            yield chunk


class ScriptedResponder:
    """Answers with scripted replies, streamed a word at a time."""

    def __init__(self, replies: list[str] | Callable[[str], str]) -> None:
        self._next = _reply_picker(replies)
        # The last conversation answered and its reply: asked again (a preemptive
        # request withdrawn, then the same turn for real), it answers the same, as a
        # deterministic model would, instead of taking the next scripted reply.
        self._last: tuple[str, str] | None = None

    async def respond(self, messages: list[dict[str, Any]], model: str) -> AsyncIterator[str]:
        """Stream the next reply; the question is the last user message."""
        conversation = json.dumps(messages, sort_keys=True)
        if self._last is not None and self._last[0] == conversation:
            reply = self._last[1]
        else:
            question = next(
                (str(m.get("content", "")) for m in reversed(messages) if m.get("role") == "user"),
                "",
            )
            reply = self._next(question)
            self._last = (conversation, reply)
        words = reply.split(" ")
        for i, word in enumerate(words):
            yield word if i == 0 else f" {word}"
