"""What a protocol layer needs from a model: the seams between wire and engine."""

from collections.abc import AsyncIterator
from typing import Any, Protocol


class TranscriptionStream(Protocol):
    """One utterance being transcribed as its audio arrives."""

    async def feed(self, pcm: bytes) -> str:
        """Take more 16 kHz PCM16 mono audio; return newly recognised text, maybe ""."""
        ...

    async def finish(self) -> str:
        """The audio is complete; return the text not yet returned."""
        ...


class Transcriber(Protocol):
    """A speech recogniser (Voxtral's role)."""

    def open_stream(self) -> TranscriptionStream:
        """Start transcribing a new utterance."""
        ...


class Synthesizer(Protocol):
    """A speech synthesiser (Chatterbox's role)."""

    sample_rate: int

    def synthesize(self, text: str, voice: str, options: dict[str, Any]) -> AsyncIterator[bytes]:
        """PCM16 mono audio of the text at `sample_rate`, yielded as it is made."""
        ...


class Responder(Protocol):
    """A chat model (Cerebras' role)."""

    def respond(self, messages: list[dict[str, Any]], model: str) -> AsyncIterator[str]:
        """The reply's text, token by token."""
        ...
