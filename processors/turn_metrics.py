"""Per-turn latency, measured the way the operators' runbook defines it.

All times come from the pipeline clock stamped on each frame push, so the observer's
own scheduling never distorts them. Instants the VAD places in the past (the end of
the user's voiced audio, the start of barge-in speech) are derived from its frames:
a stop comes `stop_secs` (the silence the VAD measured) after the voice reached it, a
start `start_secs` (measured from the input audio's first voiced sound, which Silero
misses: `voice_onset.py`) after it began. The user's speech ended earlier still by the
time their audio waited in the transport, and the bot's audio reaches the listener some
time after it is written (`TransportDelayFrame`).
"""

from dataclasses import dataclass
from typing import Any

from loguru import logger
from pipecat.frames.frames import (
    AggregatedTextFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EagerEndOfTurnCancelFrame,
    EndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.llm_service import LLMService
from pipecat.services.tts_service import TTSService
from pipecat.transports.base_output import BaseOutputTransport

from processors.playout_frames import PausePlayoutFrame, ResumePlayoutFrame
from processors.sound_frames import UserSoundStartedFrame, UserSoundStoppedFrame
from processors.transport_delay_frame import TransportDelayFrame
from processors.turn_histograms import observe_turn

TURN_METRICS_EVENT = "Turn metrics"
NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000


@dataclass
class _Turn:
    """Instants (pipeline clock, ns) observed for one user turn and the reply to it."""

    number: int
    ended_at: int | None = None
    last_speech_at: int | None = None
    llm_request_at: int | None = None
    llm_first_token_at: int | None = None
    tts_first_text_at: int | None = None
    tts_first_audio_at: int | None = None
    first_audio_sent_at: int | None = None
    barge_in_speech_at: int | None = None
    halted_at: int | None = None

    def metrics(self) -> dict[str, float | None]:
        """The runbook's figures, in milliseconds; None where a turn had no such step."""
        return {
            "endpointer_latency_ms": _ms(self.last_speech_at, self.ended_at),
            "llm_ttft_ms": _ms(self.llm_request_at, self.llm_first_token_at),
            "tts_first_audio_latency_ms": _ms(self.tts_first_text_at, self.tts_first_audio_at),
            "e2e_first_audio_ms": _ms(self.ended_at, self.first_audio_sent_at),
            "voice_to_voice_ms": _ms(self.last_speech_at, self.first_audio_sent_at),
            "barge_in_cutoff_ms": _ms(self.barge_in_speech_at, self.halted_at),
        }


def _ms(start: int | None, end: int | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start) / NS_PER_MS, 1)


class TurnMetricsObserver(BaseObserver):
    """Logs one `Turn metrics` record per turn, adds it to Prometheus, offers it to the client.

    A turn starts when the user's turn ends (or when the bot speaks unprompted, as in
    the greeting) and is reported once the bot has finished or been cut off, or when
    the next turn begins. A reply generated preemptively starts before its turn ends;
    what it did by then counts for the turn it turns out to answer. Subscribe to
    ``on_turn_metrics`` to forward each record.
    """

    def __init__(self, *, room: str, **kwargs: Any) -> None:
        """Initialize the observer.

        Args:
            room: The room this pipeline serves, stamped on each record.
            **kwargs: Passed to `BaseObserver`.
        """
        super().__init__(**kwargs)
        self._room = room
        self._turns = 0
        self._turn: _Turn | None = None
        # Instants of a reply begun before its turn ended (preemptive generation).
        self._early = _Turn(number=0)
        self._last_speech_at: int | None = None
        # The transport's unseen waits: the user's audio before the VAD heard it, the
        # bot's audio after it was written.
        self._uplink_ns = 0
        self._downlink_ns = 0
        # When the sound going on in the user's audio began (it pauses the bot at once).
        self._sound_at: int | None = None
        self._bot_speaking = False
        self._register_event_handler("on_turn_metrics")

    async def on_push_frame(self, data: FramePushed) -> None:
        """Note the instants each turn is measured by."""
        frame, source, at = data.frame, data.source, data.timestamp
        if isinstance(frame, (VADUserStartedSpeakingFrame, VADUserStoppedSpeakingFrame)):
            if data.first_push and data.direction == FrameDirection.DOWNSTREAM:
                await self._on_vad(frame, at)
        elif isinstance(frame, UserSoundStartedFrame):
            if data.first_push:
                self._sound_at = at - int(frame.start_secs * NS_PER_S)
        elif isinstance(frame, UserSoundStoppedFrame):
            if data.first_push:
                self._sound_at = None
        elif isinstance(frame, TransportDelayFrame):
            if data.first_push:
                self._uplink_ns = int(frame.uplink_s * NS_PER_S)
                self._downlink_ns = int(frame.downlink_s * NS_PER_S)
        elif isinstance(frame, UserStoppedSpeakingFrame):
            if data.first_push and data.direction == FrameDirection.DOWNSTREAM:
                await self._report()
                last_speech_at = (
                    None if self._last_speech_at is None else self._last_speech_at - self._uplink_ns
                )
                self._turn = self._new_turn(ended_at=at, last_speech_at=last_speech_at)
                self._last_speech_at = None
        elif isinstance(frame, EagerEndOfTurnCancelFrame):
            if data.first_push:
                self._early = _Turn(number=0)
        elif isinstance(frame, LLMFullResponseStartFrame) and isinstance(source, LLMService):
            self._first("llm_request_at", at)
        elif isinstance(frame, LLMTextFrame) and isinstance(source, LLMService):
            self._first("llm_first_token_at", at)
        elif isinstance(frame, AggregatedTextFrame | TTSSpeakFrame) and isinstance(
            data.destination, TTSService
        ):
            self._first("tts_first_text_at", at)
        elif isinstance(frame, TTSAudioRawFrame) and isinstance(source, TTSService):
            self._first("tts_first_audio_at", at)
        elif (
            isinstance(source, BaseOutputTransport) and data.direction == FrameDirection.DOWNSTREAM
        ):
            await self._on_bot_speech(frame, at)
        elif isinstance(frame, (EndFrame, CancelFrame)):
            await self._report()

    async def _on_vad(
        self, frame: VADUserStartedSpeakingFrame | VADUserStoppedSpeakingFrame, at: int
    ) -> None:
        if isinstance(frame, VADUserStoppedSpeakingFrame):
            self._last_speech_at = at - int(frame.stop_secs * NS_PER_S)
        elif self._turn is None:
            # Whatever a preemptive reply did so far answered too little.
            self._early = _Turn(number=0)
        elif self._bot_speaking and self._turn and self._turn.barge_in_speech_at is None:
            # The speech began with the sound it is part of, if that began earlier.
            speech_at = at - int(frame.start_secs * NS_PER_S)
            if self._sound_at is not None:
                speech_at = min(speech_at, self._sound_at)
            self._turn.barge_in_speech_at = speech_at - self._uplink_ns

    async def _on_bot_speech(self, frame: Any, at: int) -> None:
        if isinstance(frame, BotStartedSpeakingFrame):
            # The output transport announces this just before it writes the first audio
            # frame: the moment that frame is written, whatever the device's pacing.
            self._bot_speaking = True
            if self._turn is None:
                self._turn = self._new_turn()
            self._first("first_audio_sent_at", at + self._downlink_ns)
        elif isinstance(frame, PausePlayoutFrame) and self._turn is not None:
            # Audio halts here, as the listener hears it a downlink later; it is a
            # barge-in only if the reply does not resume.
            self._first("halted_at", at + self._downlink_ns)
        elif isinstance(frame, ResumePlayoutFrame) and self._turn is not None:
            self._turn.barge_in_speech_at = self._turn.halted_at = None
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
            if self._turn is not None:
                if self._turn.barge_in_speech_at is not None:
                    self._first("halted_at", at + self._downlink_ns)
                else:
                    self._turn.halted_at = None
                await self._report()

    def _new_turn(self, **instants: int | None) -> _Turn:
        """A turn, with what a reply started before it ended (preemptively) already did."""
        self._turns += 1
        early, self._early = self._early, _Turn(number=0)
        early.number = self._turns
        for name, at in instants.items():
            setattr(early, name, at)
        return early

    def _first(self, name: str, at: int) -> None:
        turn = self._turn if self._turn is not None else self._early
        if getattr(turn, name) is None:
            setattr(turn, name, at)

    async def _report(self) -> None:
        turn, self._turn = self._turn, None
        if turn is None:
            return
        record = {"room": self._room, "turn": turn.number, **turn.metrics()}
        logger.bind(event=TURN_METRICS_EVENT, **record).info(TURN_METRICS_EVENT)
        observe_turn(record)
        await self._call_event_handler("on_turn_metrics", record)
