"""Chatterbox text-to-speech over its OpenAI-style HTTP API.

Chatterbox servers answer `POST /v1/audio/speech` with a 24 kHz mono PCM16 WAV clip,
and `POST /v1/audio/speech/stream` with the same audio sent as it is synthesised. This
service prefers the streaming form, so the first audio leaves long before the sentence
is finished. It accepts a WAV header (in however many pieces it arrives) or raw PCM,
and resamples when the pipeline's output rate differs. A line known in advance (the
greeting) can be `prepare`d: requested at once, and replayed when it is to be spoken.

Chatterbox's server closes a connection idle for 5 s, as uvicorn does, and a turn's
first sentence usually comes later than that after the last one: when the user stops
speaking or a reply starts, a connection is opened (`ConnectionWarmer`) while the LLM
thinks, so the sentence does not wait for the handshakes.
"""

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
from loguru import logger
from pipecat.frames.frames import (
    ErrorFrame,
    Frame,
    LLMFullResponseStartFrame,
    TextFrame,
    TTSAudioRawFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.settings import TTSSettings
from pipecat.services.tts_service import TTSService
from pipecat.utils.errors import ErrorCategory
from pipecat.utils.tracing.service_decorators import traced_tts
from pipecat.utils.types import NOT_GIVEN, NotGiven, is_given

from services.connection_warmer import http_warmer
from services.engine_metrics import count_retry
from services.interruption_fence import InterruptionFence
from services.prepared_speech import PreparedSpeech
from services.wav_stream import parse_wav_header

CHATTERBOX_SAMPLE_RATE = 24000
SPEECH_PATH = "/v1/audio/speech"
STREAM_PATH = "/v1/audio/speech/stream"
# A sentence will be asked for soon: the user has stopped, or a reply is starting.
SPEECH_COMING = (UserStoppedSpeakingFrame, LLMFullResponseStartFrame)
SILENCE_SECS = 0.1
ResponseFormat = Literal["wav", "pcm"]


class ChatterboxStatusError(ValueError):
    """Chatterbox answered with an HTTP error status."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"Chatterbox answered HTTP {status}: {detail}")
        self.status = status


@dataclass
class ChatterboxTTSSettings(TTSSettings):
    """Runtime-changeable Chatterbox settings.

    Parameters:
        exaggeration: Emotional intensity; None leaves the server's default.
        cfg_weight: Adherence to the text versus natural pacing.
        temperature: Sampling temperature.
    """

    exaggeration: float | None | NotGiven = field(default_factory=lambda: NOT_GIVEN)
    cfg_weight: float | None | NotGiven = field(default_factory=lambda: NOT_GIVEN)
    temperature: float | None | NotGiven = field(default_factory=lambda: NOT_GIVEN)


class ChatterboxTTSService(TTSService):
    """Speaks through a Chatterbox server, streaming audio as it arrives.

    A request that yields no audio within `timeout_s` (first byte, or between two
    pieces) is abandoned: the turn gets a moment of silence and a non-fatal error, so
    the pipeline never waits on a stuck server. An interruption cancels the request and
    closes its connection at once.
    """

    Settings = ChatterboxTTSSettings
    _settings: ChatterboxTTSSettings

    def __init__(
        self,
        *,
        base_url: str,
        aiohttp_session: aiohttp.ClientSession,
        api_key: str | None = None,
        streaming: bool = True,
        response_format: ResponseFormat = "wav",
        timeout_s: float = 2.0,
        idle_close_s: float = 5.0,
        settings: ChatterboxTTSSettings | None = None,
        **kwargs: Any,
    ) -> None:
        """Initialize the service.

        Args:
            base_url: Server root, e.g. ``http://127.0.0.1:4123``.
            aiohttp_session: Session owned by the bot, shared by its HTTP services.
            api_key: Bearer token, when the server requires one.
            streaming: Use the streaming endpoint.
            response_format: Ask for ``wav`` or raw ``pcm``.
            timeout_s: Longest wait for the first byte, and between two pieces.
            idle_close_s: How long the server keeps an idle connection open (0: as long
                as the client does, so none is opened ahead).
            settings: Changes to the default settings.
            **kwargs: Passed to `TTSService`.
        """
        default_settings = self.Settings(
            model=None,
            voice="default",
            language=None,
            exaggeration=None,
            cfg_weight=None,
            temperature=None,
        )
        if settings is not None:
            default_settings.apply_update(settings)
        super().__init__(
            push_start_frame=True,
            push_stop_frames=True,
            settings=default_settings,
            **kwargs,
        )
        self._url = base_url.rstrip("/") + (STREAM_PATH if streaming else SPEECH_PATH)
        self._session = aiohttp_session
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._response_format = response_format
        self._timeout_s = timeout_s
        self._fence = InterruptionFence(kinds=(TextFrame,))
        self._prepared: dict[str, PreparedSpeech] = {}
        self._warmer = http_warmer(
            aiohttp_session, base_url, self._headers, idle_close_s=idle_close_s, name=str(self)
        )

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Speak text as `TTSService` does, except text an interruption overtook."""
        if self._fence.overtaken(frame, direction):
            return
        if isinstance(frame, SPEECH_COMING):
            self._warmer.warm()
        await super().process_frame(frame, direction)

    def can_generate_metrics(self) -> bool:
        """Chatterbox reports time to first byte."""
        return True

    def _request_body(self, text: str) -> dict[str, Any]:
        """The JSON body for one sentence, built from a snapshot of the settings."""
        body: dict[str, Any] = {
            "input": text,
            "voice": self._settings.voice,
            "response_format": self._response_format,
        }
        for name in ("exaggeration", "cfg_weight", "temperature"):
            value = getattr(self._settings, name)
            if is_given(value) and value is not None:
                body[name] = value
        return body

    @traced_tts
    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        """Synthesize one piece of text, yielding audio frames as bytes arrive.

        Args:
            text: The text to speak.
            context_id: The audio context the frames belong to.

        Yields:
            Audio frames; on failure a moment of silence and an `ErrorFrame`.
        """
        prepared = self._prepared.pop(text.strip(), None)
        if prepared is not None and prepared.failed_empty:
            # It failed while nobody listened yet (the engine restarting, say): ask again.
            prepared = None
        try:
            await self.start_ttfb_metrics()
            # Closed on the way out, so an interruption closes the request at once.
            async with aclosing(
                prepared.pieces() if prepared is not None else self._fetch(text)
            ) as pieces:
                source_rate, first_audio = await self._read_format(pieces)
                await self.start_tts_usage_metrics(text)
                async for frame in self._stream_audio_frames_from_iterator(
                    _prepend(first_audio, pieces), in_sample_rate=source_rate, context_id=context_id
                ):
                    await self.stop_ttfb_metrics()
                    yield frame
        except TimeoutError as e:
            logger.warning(f"{self}: no audio from Chatterbox within {self._timeout_s:.1f}s")
            for frame in self._failed(
                context_id, f"Speech synthesis timed out after {self._timeout_s:.1f}s", e
            ):
                yield frame
        except (aiohttp.ClientError, ValueError) as e:
            for frame in self._failed(context_id, f"Speech synthesis failed: {e}", e):
                yield frame

    def prepare(self, text: str) -> None:
        """Start synthesising `text` now; speaking it later replays that request.

        For a line known before it is due, such as the greeting: its audio is fetched
        while nobody listens yet, and a request for the same text uses it.
        """
        self._prepared[text.strip()] = PreparedSpeech(self._fetch(text))

    async def cleanup(self) -> None:
        """Drop prepared speech nobody asked for, closing its requests."""
        for prepared in self._prepared.values():
            prepared.cancel()
        self._prepared.clear()
        await self._warmer.close()
        await super().cleanup()

    async def _fetch(self, text: str) -> AsyncGenerator[bytes, None]:
        """The engine's response body for `text` as it arrives (WAV header and all).

        Raises:
            TimeoutError: no answer, or no next piece, within the timeout.
            ChatterboxStatusError: the engine answered with an error status.
            aiohttp.ClientError: the connection failed.
        """
        response = await self._post(text)
        ended = False
        try:
            if response.status != 200:
                detail = (await asyncio.wait_for(response.text(), self._timeout_s))[:200]
                raise ChatterboxStatusError(response.status, detail)
            while piece := await asyncio.wait_for(response.content.readany(), self._timeout_s):
                yield piece
            ended = True
        finally:
            response.close()
            # A response read to its end leaves its connection in the pool.
            if ended:
                self._warmer.used()
            else:
                self._warmer.lost()

    async def _post(self, text: str) -> aiohttp.ClientResponse:
        """Send the request; once more if the server had just closed the connection.

        A kept-alive connection can be closed by the server (idle for its 5 s) just as
        the request goes out; aiohttp retries that only for idempotent methods.
        """
        body = self._request_body(text)

        async def post() -> aiohttp.ClientResponse:
            request = self._session.post(self._url, json=body, headers=self._headers)
            return await asyncio.wait_for(request, self._timeout_s)

        try:
            return await post()
        except aiohttp.ServerDisconnectedError:
            logger.debug(f"{self}: the kept-alive connection was closed, asking on a new one")
            count_retry("tts", "connection")
            return await post()

    def _failed(self, context_id: str, message: str, exception: Exception) -> list[Frame]:
        """A moment of silence, so the sentence still ends as audio, and the error.

        Ending with audio also keeps Pipecat from counting the sentence as a silent
        context, three of which in a row would write the service off for good.
        """
        silence = bytes(int(self.sample_rate * SILENCE_SECS) * 2)
        return [
            TTSAudioRawFrame(silence, self.sample_rate, 1, context_id=context_id),
            # Attributed to no category: a failed sentence must not take the service out
            # of use (Pipecat would, for a 4xx), the next one is tried normally.
            ErrorFrame(message, exception=exception, category=ErrorCategory.UNKNOWN),
        ]

    async def _read_format(self, pieces: AsyncIterator[bytes]) -> tuple[int, bytes]:
        """Read far enough to know the sample rate; return it with the first audio bytes.

        Raises:
            ValueError: the server sent something other than the audio asked for.
        """
        if self._response_format == "pcm":
            return CHATTERBOX_SAMPLE_RATE, await anext(pieces, b"")
        head = b""
        async for piece in pieces:
            head += piece
            wav = parse_wav_header(head)
            if wav is not None:
                if wav.channels != 1:
                    raise ValueError("Chatterbox sent audio that is not mono")
                return wav.sample_rate, head[wav.data_offset :]
        raise ValueError("Chatterbox ended the response before any audio")


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for piece in rest:
        yield piece
