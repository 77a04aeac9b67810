"""The voice pipeline, assembled for any Pipecat transport.

transport in → Silero VAD → Voxtral STT → user turn aggregation → Cerebras LLM →
text chunker → Chatterbox TTS → (preempted reply gate) → transport out → assistant
aggregation

LiveKit provides the transport in production (`bot.room`); tests and benchmarks pass
their own, so everything here runs without an SFU.
"""

from collections.abc import Awaitable, Callable

import aiohttp
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.observers.base_observer import BaseObserver
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.services.stt_service import STTService
from pipecat.transports.base_transport import BaseTransport
from pipecat.turns.user_stop import (
    BaseUserTurnStopStrategy,
    SpeechTimeoutUserTurnStopStrategy,
    TurnAnalyzerUserTurnStopStrategy,
)
from pipecat.turns.user_turn_strategies import UserTurnStrategies

from bot.settings import Settings
from bot.tracing import tracing_enabled
from processors.audio_timed_turn_stop import AudioTimedUserTurnStopStrategy
from processors.engine_error_observer import EngineErrorObserver
from processors.input_audio_end import InputAudioEnd
from processors.lean_worker_observer import use_lean_observer
from processors.measured_stop_vad import MeasuredStopVADProcessor
from processors.output_span import OutputSpanObserver
from processors.overlap_turn_start import OverlapUserTurnStartStrategy
from processors.pausing_vad import PausingSileroVADAnalyzer
from processors.preempted_reply_gate import PreemptedReplyGate
from processors.preemptive_turn_stop import PreemptiveUserTurnStopStrategy
from processors.redaction import Redactor
from processors.text_chunker import TextChunker
from processors.transcript_log_guard import TranscriptLogGuard
from processors.turn_metrics import TurnMetricsObserver
from services.cerebras_llm import CerebrasPolicyLLMService
from services.chatterbox_tts import ChatterboxTTSService
from services.voxtral_realtime_stt import VoxtralRealtimeSTTService
from services.voxtral_segmented_stt import VoxtralSegmentedSTTService

AUDIO_IN_SAMPLE_RATE = 16000
AUDIO_OUT_SAMPLE_RATE = 24000
TURN_METRICS_MESSAGE = "turn-metrics"
# One Silero window (512 samples at 16 kHz).
RESUME_MARGIN_SECS = 0.032


def _secret(value) -> str | None:
    return value.get_secret_value() if value else None


def create_stt(settings: Settings, http: aiohttp.ClientSession) -> STTService:
    """The Voxtral service for the configured mode."""
    timeout_s = settings.voxtral_timeout_ms / 1000
    if settings.voxtral_mode == "segmented":
        return VoxtralSegmentedSTTService(
            base_url=settings.voxtral_http_url,
            aiohttp_session=http,
            api_key=_secret(settings.voxtral_api_key),
            timeout_s=timeout_s,
            idle_close_s=settings.voxtral_idle_close_s,
            settings=VoxtralSegmentedSTTService.Settings(model=settings.voxtral_model),
        )
    return VoxtralRealtimeSTTService(
        url=settings.voxtral_ws_url,
        api_key=_secret(settings.voxtral_api_key),
        timeout_s=timeout_s,
        settings=VoxtralRealtimeSTTService.Settings(model=settings.voxtral_model),
    )


def create_llm(settings: Settings) -> CerebrasPolicyLLMService:
    """The Cerebras service with the project's failure policy."""
    return CerebrasPolicyLLMService(
        api_key=settings.cerebras_api_key.get_secret_value(),
        base_url=settings.cerebras_base_url,
        timeout_s=settings.llm_timeout_ms / 1000,
        idle_close_s=settings.llm_idle_close_s,
        settings=CerebrasPolicyLLMService.Settings(
            model=settings.cerebras_model, system_instruction=settings.system_prompt
        ),
    )


def create_tts(settings: Settings, http: aiohttp.ClientSession) -> ChatterboxTTSService:
    """The Chatterbox service."""
    return ChatterboxTTSService(
        base_url=settings.chatterbox_url,
        aiohttp_session=http,
        api_key=_secret(settings.chatterbox_api_key),
        streaming=settings.chatterbox_streaming,
        timeout_s=settings.chatterbox_timeout_ms / 1000,
        idle_close_s=settings.chatterbox_idle_close_s,
        settings=ChatterboxTTSService.Settings(
            voice=settings.chatterbox_voice,
            exaggeration=settings.chatterbox_exaggeration,
            cfg_weight=settings.chatterbox_cfg_weight,
            temperature=settings.chatterbox_temperature,
        ),
    )


def vad_pause_secs(settings: Settings) -> float:
    """Silence after which the VAD reports a pause: the STT finalizes what it has.

    The turn still ends only after `VAD_STOP_SECS`; smart-turn judges every pause the
    VAD reports, so it keeps one stop at `VAD_STOP_SECS`.
    """
    if settings.turn_stop_strategy == "smart_turn":
        return settings.vad_stop_secs
    return min(settings.vad_pause_secs, settings.vad_stop_secs)


def create_vad_analyzer(settings: Settings) -> PausingSileroVADAnalyzer:
    """Silero, stopping at the pause; loading its model takes ~45 ms of CPU.

    With a pause shorter than the endpointing, voice within the rest of the endpointing
    silence resumes the same speech.
    """
    pause = vad_pause_secs(settings)
    params = VADParams(
        confidence=settings.vad_confidence,
        start_secs=settings.vad_start_secs,
        stop_secs=pause,
        min_volume=settings.vad_min_volume,
    )
    # Voice resuming a little after the turn would have ended still counts as resumed.
    resume_secs = (
        settings.vad_stop_secs - pause + RESUME_MARGIN_SECS
        if pause < settings.vad_stop_secs
        else 0.0
    )
    return PausingSileroVADAnalyzer(params=params, resume_secs=resume_secs)


def create_turn_strategies(settings: Settings) -> UserTurnStrategies:
    """When a user turn starts (and may interrupt the bot) and when it ends.

    While the bot talks, a sound pauses it and only real words interrupt it
    (`processors/overlap_turn_start.py`; the output must be a `PausableOutput`).
    `speech_timeout` ends the turn as soon as the VAD's endpointing silence
    (`VAD_STOP_SECS`, or `UNFINISHED_TURN_TIMEOUT_MS` after a transcript that stops
    mid-phrase) has passed and the final transcript is in, replying
    preemptively if `PREEMPTIVE_GENERATION` is on; `smart_turn` lets the smart-turn
    model judge whether the user has finished, at some CPU cost per pause.
    """
    interrupt = settings.enable_interruptions
    stop: BaseUserTurnStopStrategy
    if settings.turn_stop_strategy == "smart_turn":
        from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3

        stop = TurnAnalyzerUserTurnStopStrategy(turn_analyzer=LocalSmartTurnAnalyzerV3())
    else:
        pause = vad_pause_secs(settings)
        # The VAD reported the stop after the pause; the turn waits out the rest, or the
        # longer silence after a phrase left unfinished.
        timed: type[AudioTimedUserTurnStopStrategy] = (
            PreemptiveUserTurnStopStrategy
            if settings.preemptive_generation
            else AudioTimedUserTurnStopStrategy
        )
        if (
            settings.preemptive_generation
            or settings.vad_stop_secs > pause
            or settings.unfinished_turn_timeout_ms
        ):
            stop = timed(
                user_speech_timeout=settings.vad_stop_secs - pause,
                unfinished_words=settings.unfinished_turn_words,
                unfinished_timeout=max(0.0, settings.unfinished_turn_timeout_ms / 1000 - pause),
            )
        else:
            stop = SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0.0)
    start = OverlapUserTurnStartStrategy(
        enable_interruptions=interrupt,
        backchannel_words=settings.backchannel_words,
        min_words=settings.min_interruption_words,
        false_interruption_timeout=settings.false_interruption_timeout_ms / 1000,
    )
    return UserTurnStrategies(start=[start], stop=[stop])


def build_worker(
    *,
    transport: BaseTransport,
    settings: Settings,
    http: aiohttp.ClientSession,
    room: str,
    redactor: Redactor,
    context: LLMContext | None = None,
    on_context_changed: Callable[[], Awaitable[None]] | None = None,
    vad_analyzer: PausingSileroVADAnalyzer | None = None,
    opening_line: str | None = None,
) -> PipelineWorker:
    """Assemble the pipeline for one room and the worker that runs it.

    `context` carries a conversation restored from an earlier bot; `on_context_changed`
    runs each time a user or bot turn has been added to it, so it can be saved.
    `vad_analyzer`, made by `create_vad_analyzer` before the room came, is used
    instead of loading Silero now. `opening_line`, the first thing the bot will say,
    is synthesised from now on, so it plays as soon as someone listens.
    """
    user_aggregator, assistant_aggregator = LLMContextAggregatorPair(
        context or LLMContext(),
        user_params=LLMUserAggregatorParams(user_turn_strategies=create_turn_strategies(settings)),
    )
    if on_context_changed is not None:

        async def changed(*_: object) -> None:
            await on_context_changed()

        user_aggregator.add_event_handler("on_user_turn_message_added", changed)
        assistant_aggregator.add_event_handler("on_assistant_turn_stopped", changed)
    tts = create_tts(settings, http)
    if opening_line:
        tts.prepare(opening_line)
    preempting = settings.preemptive_generation and settings.turn_stop_strategy == "speech_timeout"
    pipeline = Pipeline(
        [
            transport.input(),
            MeasuredStopVADProcessor(
                vad_analyzer=vad_analyzer or create_vad_analyzer(settings),
                sound_min_dbfs=settings.sound_min_dbfs,
            ),
            create_stt(settings, http),
            user_aggregator,
            InputAudioEnd(),
            create_llm(settings),
            TextChunker(
                min_chars=settings.chunk_min_chars,
                max_wait_s=settings.chunk_max_wait_ms / 1000,
                first_at_clause=settings.chunk_first_at_clause,
            ),
            tts,
            *([PreemptedReplyGate()] if preempting else []),
            transport.output(),
            assistant_aggregator,
        ]
    )
    turn_metrics = TurnMetricsObserver(room=room)

    observers: list[BaseObserver] = [turn_metrics, EngineErrorObserver()]
    if not settings.log_transcripts:
        observers.append(TranscriptLogGuard(redactor=redactor))
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(
            audio_in_sample_rate=AUDIO_IN_SAMPLE_RATE,
            audio_out_sample_rate=AUDIO_OUT_SAMPLE_RATE,
            enable_metrics=True,
        ),
        observers=observers,
        idle_timeout_secs=None,
        enable_tracing=tracing_enabled(settings),
    )
    use_lean_observer(worker)
    if worker.turn_trace_observer is not None:
        worker.add_observer(OutputSpanObserver(turns=worker.turn_trace_observer))

    @turn_metrics.event_handler("on_turn_metrics")
    async def send_to_client(_: TurnMetricsObserver, record: dict) -> None:
        await worker.rtvi.send_server_message({"type": TURN_METRICS_MESSAGE, **record})

    return worker
