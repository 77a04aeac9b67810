"""Voxtral speech-to-text over vLLM's realtime websocket, while the user talks.

The user's audio is streamed over `ws /v1/realtime` as they speak and partial
transcripts are shown as they come (`transcription.delta`), so the final transcript is
ready moments after the user stops.
"""

import asyncio
import base64
import json
from collections import deque
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Literal

from loguru import logger
from pipecat.frames.frames import (
    Frame,
    InterimTranscriptionFrame,
    StartFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.settings import STTSettings
from pipecat.services.stt_service import WebsocketSTTService
from pipecat.utils.time import time_now_iso8601
from pipecat.utils.tracing.service_decorators import traced_stt
from websockets.exceptions import WebSocketException

from services.engine_metrics import count_retry, failure_kind
from services.voxtral import (
    TIMEOUT_MESSAGE,
    VOXTRAL_SAMPLE_RATE,
    VOXTRAL_TTFS_P99_S,
    VoxtralSTTSettings,
    bearer_headers,
    voxtral_settings,
)

ClientEvent = Literal["session.update", "input_audio_buffer.append", "input_audio_buffer.commit"]
ServerEvent = Literal["session.created", "transcription.delta", "transcription.done", "error"]
RECONNECT_MIN_WAIT_S = 0.2
RECONNECT_MAX_WAIT_S = 5.0


@dataclass
class _Utterance:
    """One stretch of user speech and how far it has reached the server."""

    audio: bytearray
    ended: bool = False
    started_on_server: bool = False
    sent_bytes: int = 0
    final_sent: bool = False
    text: str = ""


class VoxtralRealtimeSTTService(WebsocketSTTService):
    """Streams speech to Voxtral's realtime websocket while the user talks.

    Audio from a little before VAD detected speech (the pre-roll) is sent too, so the
    first syllable is not lost. Utterances are transcribed strictly in order: speech
    that starts while the previous utterance still awaits its transcript is held and
    sent as soon as that transcript arrives. When the socket drops the service
    reconnects by itself and replays the utterance in progress.
    """

    Settings = VoxtralSTTSettings
    _settings: VoxtralSTTSettings

    def __init__(
        self,
        *,
        url: str,
        api_key: str | None = None,
        timeout_s: float = 3.0,
        preroll_secs: float = 0.3,
        settings: VoxtralSTTSettings | None = None,
        **kwargs: Any,
    ) -> None:
        """Initialize the service.

        Args:
            url: The realtime endpoint, e.g. ``ws://127.0.0.1:8000/v1/realtime``.
            api_key: Bearer token, when the server requires one.
            timeout_s: Longest wait for a transcript after the user stops speaking.
            preroll_secs: Audio kept from before VAD detected speech.
            settings: Changes to the default settings.
            **kwargs: Passed to `WebsocketSTTService`.
        """
        super().__init__(
            sample_rate=VOXTRAL_SAMPLE_RATE,
            ttfs_p99_latency=VOXTRAL_TTFS_P99_S,
            settings=voxtral_settings(settings),
            reconnect_on_error=False,
            **kwargs,
        )
        self._url = url
        self._headers = bearer_headers(api_key)
        self._timeout_s = timeout_s
        self._preroll: deque[bytes] = deque()
        self._preroll_bytes_max = int(preroll_secs * VOXTRAL_SAMPLE_RATE) * 2
        self._utterances: deque[_Utterance] = deque()
        self._ready = asyncio.Event()
        self._speech_waiting = asyncio.Event()
        self._connection_task: asyncio.Task | None = None
        self._transcript_timer: asyncio.Task | None = None

    def can_generate_metrics(self) -> bool:
        """Time to final transcript is reported."""
        return True

    # STTService narrows the argument of AIService._update_settings to STTSettings.
    async def _update_settings(self, delta: STTSettings) -> dict[str, Any]:  # type: ignore[override]
        """Apply a settings change; a new model takes a new session, replaying the utterance."""
        changed = await super()._update_settings(delta)
        if "model" in changed:
            await self._disconnect_websocket()
        self._warn_unhandled_updated_settings(changed.keys() - {"model"})
        return changed

    async def start(self, frame: StartFrame) -> None:
        """Start the service and keep a connection open for the session."""
        await super().start(frame)
        await self._connect()

    async def _connect(self) -> None:
        await super()._connect()
        if self._connection_task is None:
            self._connection_task = self.create_task(self._connection_loop(), "voxtral_connection")

    async def _disconnect(self) -> None:
        await super()._disconnect()
        await self._cancel_transcript_timer()
        if self._connection_task is not None:
            await self.cancel_task(self._connection_task)
            self._connection_task = None
        await self._disconnect_websocket()
        self._utterances.clear()
        self._preroll.clear()

    async def _connection_loop(self) -> None:
        """Stay connected until the service stops, reconnecting with backoff."""
        wait = RECONNECT_MIN_WAIT_S
        while not self._disconnecting:
            try:
                await self._connect_websocket()
                wait = RECONNECT_MIN_WAIT_S
                await self._receive_messages()
                logger.warning(f"{self}: Voxtral closed the connection")
            except (OSError, TimeoutError, WebSocketException) as e:
                logger.warning(f"{self}: Voxtral connection failed: {e}")
                count_retry("stt", failure_kind(e))
            self._mark_disconnected()
            # Back off, but try at once when the user starts speaking.
            self._speech_waiting.clear()
            try:
                await asyncio.wait_for(self._speech_waiting.wait(), wait)
            except TimeoutError:
                pass
            wait = min(wait * 2, RECONNECT_MAX_WAIT_S)

    async def _connect_websocket(self) -> None:
        websocket = await asyncio.wait_for(
            # Base64 PCM barely deflates: compressing it was ~8 % of a talking user's CPU.
            self._websocket_connect(self._url, additional_headers=self._headers, compression=None),
            self._timeout_s,
        )
        greeting = json.loads(await asyncio.wait_for(websocket.recv(), self._timeout_s))
        if greeting.get("type") != "session.created":
            await websocket.close()
            raise OSError(f"unexpected greeting {greeting.get('type')!r}")
        self._websocket = websocket
        await self._send("session.update", model=self._settings.model)
        self._ready.set()
        await self._call_event_handler("on_connected")
        await self._pump()

    async def _disconnect_websocket(self) -> None:
        websocket, self._websocket = self._websocket, None
        self._ready.clear()
        if websocket is not None:
            await websocket.close()
            await self._call_event_handler("on_disconnected")

    def _mark_disconnected(self) -> None:
        """Forget what the lost connection had received, so it is replayed."""
        self._websocket = None
        self._ready.clear()
        if self._utterances:
            head = self._utterances[0]
            head.started_on_server = head.final_sent = False
            head.sent_bytes = 0
            head.text = ""

    async def _receive_messages(self) -> None:
        assert self._websocket is not None
        async for message in self._websocket:
            try:
                event = json.loads(message)
                kind: ServerEvent = event["type"]
            except (ValueError, KeyError, TypeError):
                logger.warning(f"{self}: ignoring a Voxtral message that is not an event")
                continue
            if kind == "transcription.delta":
                await self._on_delta(str(event.get("delta", "")))
            elif kind == "transcription.done":
                await self._on_done(str(event.get("text", "")))
            elif kind == "error":
                await self.push_error(f"Voxtral error: {event.get('error', 'unknown')}")

    async def _send(self, kind: ClientEvent, **fields: Any) -> None:
        if self._websocket is not None:
            await self._websocket.send(json.dumps({"type": kind, **fields}))

    @traced_stt
    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame | None, None]:
        """Send speech to the server as it arrives; keep a pre-roll of the rest."""
        if self._utterances and not self._utterances[-1].ended:
            self._utterances[-1].audio += audio
            await self._pump()
        else:
            self._preroll.append(audio)
            excess = sum(len(a) for a in self._preroll) - self._preroll_bytes_max
            while excess > 0 and self._preroll:
                excess -= len(self._preroll.popleft())
        yield None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Open an utterance when VAD hears speech; close it when speech ends."""
        await super().process_frame(frame, direction)
        if isinstance(frame, VADUserStartedSpeakingFrame):
            self._utterances.append(_Utterance(audio=bytearray(b"".join(self._preroll))))
            self._preroll.clear()
            self._speech_waiting.set()
            await self._pump()
        elif isinstance(frame, VADUserStoppedSpeakingFrame) and self._utterances:
            self._utterances[-1].ended = True
            self._watch_head()
            await self._pump()

    async def _pump(self) -> None:
        """Bring the server up to date with the utterance it is transcribing."""
        if not self._utterances or not self._ready.is_set():
            return
        head = self._utterances[0]
        try:
            if not head.started_on_server:
                await self._send("input_audio_buffer.commit")
                head.started_on_server = True
            if head.sent_bytes < len(head.audio):
                chunk = bytes(head.audio[head.sent_bytes :])
                await self._send(
                    "input_audio_buffer.append", audio=base64.b64encode(chunk).decode()
                )
                head.sent_bytes += len(chunk)
            if head.ended and not head.final_sent:
                await self._send("input_audio_buffer.commit", final=True)
                head.final_sent = True
        except WebSocketException as e:
            # The connection loop notices the drop, reconnects and replays the utterance.
            logger.warning(f"{self}: sending to Voxtral failed: {e}")

    async def _on_delta(self, delta: str) -> None:
        if not self._utterances or not delta:
            return
        head = self._utterances[0]
        head.text += delta
        await self.push_frame(
            InterimTranscriptionFrame(head.text.strip(), self._user_id, time_now_iso8601())
        )

    async def _on_done(self, text: str) -> None:
        if not self._utterances:
            return
        head = self._utterances.popleft()
        transcript = (text or head.text).strip()
        if transcript:
            await self.push_frame(
                TranscriptionFrame(transcript, self._user_id, time_now_iso8601(), finalized=True)
            )
        # After the push: waiting for the deadline task to end lets the loop run audio
        # work first, a few ms the user would wait. The deadline no longer sees `head`.
        await self._cancel_transcript_timer()
        self._watch_head()
        await self._pump()

    def _watch_head(self) -> None:
        """Start the transcript deadline of the oldest utterance once the user is done.

        The deadline runs whether or not Voxtral is reachable, so an outage ends in an
        error the user sees rather than a turn that waits forever.
        """
        if self._transcript_timer is None and self._utterances and self._utterances[0].ended:
            self._transcript_timer = self.create_task(self._await_transcript(self._utterances[0]))

    async def _await_transcript(self, utterance: _Utterance) -> None:
        """Retry an utterance whose transcript is late once, then give up on it."""
        await asyncio.sleep(self._timeout_s)
        if self._utterances and self._utterances[0] is utterance:
            logger.warning(f"{self}: no transcript within {self._timeout_s:.1f}s, retrying")
            count_retry("stt", "timeout")
            # A server stuck on a generation ignores new commits: a fresh connection
            # replays the utterance.
            await self._disconnect_websocket()
            await asyncio.sleep(self._timeout_s)
        self._transcript_timer = None
        if not self._utterances or self._utterances[0] is not utterance:
            return
        self._utterances.popleft()
        await self.push_error(TIMEOUT_MESSAGE, exception=TimeoutError(TIMEOUT_MESSAGE))
        await self._disconnect_websocket()
        self._watch_head()

    async def _cancel_transcript_timer(self) -> None:
        timer, self._transcript_timer = self._transcript_timer, None
        if timer is not None and timer is not asyncio.current_task():
            await self.cancel_task(timer)
