"""Voxtral speech-to-text over vLLM's HTTP API, one request per utterance.

Each VAD-segmented utterance is posted as a WAV file to `POST /v1/audio/transcriptions`
and the server-sent deltas are read as they come. vLLM closes a connection idle for
5 s, so when the user starts speaking a connection is opened for the upload that
follows (`ConnectionWarmer`).
"""

import asyncio
import json
from collections.abc import AsyncGenerator
from typing import Any

import aiohttp
from loguru import logger
from pipecat.frames.frames import (
    ErrorFrame,
    Frame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.settings import STTSettings
from pipecat.services.stt_service import SegmentedSTTService
from pipecat.utils.time import time_now_iso8601
from pipecat.utils.tracing.service_decorators import traced_stt

from services.connection_warmer import http_warmer
from services.engine_metrics import count_retry, failure_kind
from services.voxtral import (
    TIMEOUT_MESSAGE,
    VOXTRAL_SAMPLE_RATE,
    VOXTRAL_TTFS_P99_S,
    VoxtralSTTSettings,
    bearer_headers,
    voxtral_settings,
)

TRANSCRIPTIONS_PATH = "/v1/audio/transcriptions"


class VoxtralSegmentedSTTService(SegmentedSTTService):
    """Transcribes each utterance with one `POST /v1/audio/transcriptions` request."""

    Settings = VoxtralSTTSettings
    _settings: VoxtralSTTSettings

    def __init__(
        self,
        *,
        base_url: str,
        aiohttp_session: aiohttp.ClientSession,
        api_key: str | None = None,
        timeout_s: float = 3.0,
        idle_close_s: float = 5.0,
        settings: VoxtralSTTSettings | None = None,
        **kwargs: Any,
    ) -> None:
        """Initialize the service.

        Args:
            base_url: Server root, e.g. ``http://127.0.0.1:8000``.
            aiohttp_session: Session owned by the bot.
            api_key: Bearer token, when the server requires one.
            timeout_s: Longest time one transcription request may take.
            idle_close_s: How long the server keeps an idle connection open (0: as long
                as the client does, so none is opened ahead).
            settings: Changes to the default settings.
            **kwargs: Passed to `SegmentedSTTService`.
        """
        super().__init__(
            sample_rate=VOXTRAL_SAMPLE_RATE,
            ttfs_p99_latency=VOXTRAL_TTFS_P99_S,
            settings=voxtral_settings(settings),
            **kwargs,
        )
        self._url = base_url.rstrip("/") + TRANSCRIPTIONS_PATH
        self._session = aiohttp_session
        self._headers = bearer_headers(api_key)
        self._timeout_s = timeout_s
        self._warmer = http_warmer(
            aiohttp_session, base_url, self._headers, idle_close_s=idle_close_s, name=str(self)
        )

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Open a connection for the upload as the user starts speaking."""
        if isinstance(frame, VADUserStartedSpeakingFrame):
            self._warmer.warm()
        await super().process_frame(frame, direction)

    async def cleanup(self) -> None:
        """Abandon a warm-up still under way."""
        await self._warmer.close()
        await super().cleanup()

    def can_generate_metrics(self) -> bool:
        """Time to final transcript is reported."""
        return True

    # STTService narrows the argument of AIService._update_settings to STTSettings.
    async def _update_settings(self, delta: STTSettings) -> dict[str, Any]:  # type: ignore[override]
        """Apply a settings change; the model is read by each request."""
        changed = await super()._update_settings(delta)
        self._warn_unhandled_updated_settings(changed.keys() - {"model"})
        return changed

    @traced_stt
    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame | None, None]:
        """Transcribe one WAV segment, retrying once if the server does not answer in time.

        Yields:
            Interim transcripts as deltas arrive, then the final transcript; or a
            non-fatal `ErrorFrame`.
        """
        for attempt in (1, 2):
            response: aiohttp.ClientResponse | None = None
            self._warmer.lost()  # until the response is read to its end
            try:
                response = await asyncio.wait_for(self._post(audio), self._timeout_s)
                events = self._events(response)
                first = await anext(events, None)
            except (TimeoutError, aiohttp.ClientConnectionError) as e:
                if response is not None:
                    response.close()
                if attempt == 1:
                    logger.warning(f"{self}: transcription attempt failed ({e!r}), retrying")
                    count_retry("stt", failure_kind(e))
                    continue
                yield ErrorFrame(TIMEOUT_MESSAGE, exception=e)
                return
            except (aiohttp.ClientError, ValueError) as e:
                if response is not None:
                    response.close()
                yield ErrorFrame(f"Speech recognition failed: {e}", exception=e)
                return
            try:
                async for frame in self._frames(first, events):
                    yield frame
                self._warmer.used()
            except TimeoutError as e:
                yield ErrorFrame(TIMEOUT_MESSAGE, exception=e)
            except (aiohttp.ClientError, ValueError) as e:
                yield ErrorFrame(f"Speech recognition failed: {e}", exception=e)
            finally:
                response.close()
            return

    async def _post(self, wav: bytes) -> aiohttp.ClientResponse:
        form = aiohttp.FormData()
        form.add_field("file", wav, filename="utterance.wav", content_type="audio/wav")
        form.add_field("model", str(self._settings.model))
        form.add_field("stream", "true")
        response = await self._session.post(self._url, data=form, headers=self._headers)
        if response.status != 200:
            detail = (await response.text())[:200]
            response.close()
            raise ValueError(f"Voxtral answered HTTP {response.status}: {detail}")
        return response

    async def _events(self, response: aiohttp.ClientResponse) -> AsyncGenerator[str, None]:
        """The `data:` payloads of the event stream, up to `[DONE]`."""
        while True:
            raw_line = await asyncio.wait_for(response.content.readline(), self._timeout_s)
            if not raw_line:
                raise ValueError("Voxtral ended the stream without [DONE]")
            line = raw_line.decode(errors="replace").strip()
            if not line.startswith("data:"):
                continue
            data = line.removeprefix("data:").strip()
            if data == "[DONE]":
                return
            yield data

    async def _frames(
        self, first: str | None, events: AsyncGenerator[str, None]
    ) -> AsyncGenerator[Frame, None]:
        """Interim transcripts for each delta, then the final transcript."""
        text = ""
        payload = first
        while payload is not None:
            try:
                delta = json.loads(payload)["choices"][0]["delta"].get("content") or ""
            except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
                raise ValueError("Voxtral sent an event that is not a transcription chunk") from e
            if delta:
                text += delta
                yield InterimTranscriptionFrame(text.strip(), self._user_id, time_now_iso8601())
            payload = await anext(events, None)
        if text.strip():
            yield TranscriptionFrame(text.strip(), self._user_id, time_now_iso8601())
