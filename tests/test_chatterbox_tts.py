import asyncio
import time
from typing import Any

import pytest
from pipecat.frames.frames import (
    AggregatedTextFrame,
    ErrorFrame,
    InterruptionFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.worker import PipelineParams
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.utils.text.base_text_aggregator import TextType

from engines import tone
from engines.scripted import ToneSynthesizer
from engines.wav import wav_header
from services.chatterbox_tts import ChatterboxTTSService
from services.wav_stream import parse_wav_header
from tests.conftest import SECRETS

pytestmark = pytest.mark.unit
TEXT = "Bright lanterns glow tonight"


def tts(engines, http, **kwargs) -> ChatterboxTTSService:
    options: dict[str, Any] = {"timeout_s": 0.5, "api_key": SECRETS["chatterbox_api_key"]}
    options |= kwargs
    return ChatterboxTTSService(base_url=engines.chatterbox.url, aiohttp_session=http, **options)


def audio_of(frames) -> tuple[bytes, int]:
    chunks = [f for f in frames if isinstance(f, TTSAudioRawFrame)]
    return b"".join(f.audio for f in chunks), (chunks[0].sample_rate if chunks else 0)


@pytest.mark.parametrize("streaming", [True, False])
async def test_speaks_the_text_and_sends_the_documented_request(engines, http, streaming):
    service = tts(
        engines,
        http,
        streaming=streaming,
        settings=ChatterboxTTSService.Settings(voice="narrator", exaggeration=0.7),
    )
    down, up = await run_test(service, frames_to_send=[TTSSpeakFrame(TEXT)])
    audio, rate = audio_of(down)
    assert tone.decode(audio, rate) == tone.code(TEXT)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    (request,) = engines.chatterbox.log.of_kind("speech")
    assert request["path"] == ("/v1/audio/speech/stream" if streaming else "/v1/audio/speech")
    assert request["body"] == {
        "input": TEXT,
        "voice": "narrator",
        "response_format": "wav",
        "exaggeration": 0.7,
    }
    assert request["headers"]["Authorization"] == f"Bearer {SECRETS['chatterbox_api_key']}"


async def test_resamples_to_the_pipeline_output_rate(engines, http):
    down, _ = await run_test(
        tts(engines, http),
        frames_to_send=[TTSSpeakFrame(TEXT)],
        pipeline_params=PipelineParams(audio_out_sample_rate=16000),
    )
    audio, rate = audio_of(down)
    assert rate == 16000
    assert tone.decode(audio, 16000) == tone.code(TEXT)


async def test_raw_pcm_responses_are_played_as_is(engines, http):
    down, _ = await run_test(
        tts(engines, http, response_format="pcm"), frames_to_send=[TTSSpeakFrame(TEXT)]
    )
    audio, rate = audio_of(down)
    assert tone.decode(audio, rate) == tone.code(TEXT)


async def test_audio_arrives_while_the_server_is_still_synthesizing(engines, http):
    engines.chatterbox.backend.realtime_factor = 1.0  # synthesis takes as long as the audio
    service = tts(engines, http, timeout_s=2)
    first_audio: list[float] = []

    @service.event_handler("on_after_push_frame")
    async def note(_, frame):
        if isinstance(frame, TTSAudioRawFrame) and not first_audio:
            first_audio.append(time.monotonic())

    await run_test(service, frames_to_send=[TTSSpeakFrame(TEXT)])
    (request,) = engines.chatterbox.log.of_kind("speech")
    (done,) = engines.chatterbox.log.of_kind("speech_done")
    spoken_secs = len(tone.words_of(TEXT)) * (tone.WORD_SECS + tone.GAP_SECS)
    assert first_audio[0] - request["at"] < spoken_secs / 3
    assert first_audio[0] < done["at"]


@pytest.mark.parametrize("fault", ["hang", "first_byte_delay_s"])
async def test_a_silent_server_gives_silence_and_an_error_not_a_hang(engines, http, fault):
    setattr(engines.chatterbox.faults, fault, True if fault == "hang" else 5.0)
    started = time.monotonic()
    down, up = await run_test(
        tts(engines, http, timeout_s=0.3), frames_to_send=[TTSSpeakFrame(TEXT)]
    )
    assert time.monotonic() - started < 3
    audio, _ = audio_of(down)
    assert audio and not any(audio), "a moment of silence is played"
    errors = [f.error for f in up if isinstance(f, ErrorFrame)]
    assert errors == ["Speech synthesis timed out after 0.3s"]
    assert any(isinstance(f, TTSStoppedFrame) for f in down)


async def test_a_server_error_is_reported_and_the_next_sentence_works(engines, http):
    engines.chatterbox.faults.statuses = [500]
    down, up = await run_test(
        tts(engines, http),
        frames_to_send=[TTSSpeakFrame("First try fails"), SleepFrame(0.2), TTSSpeakFrame(TEXT)],
    )
    errors = [f.error for f in up if isinstance(f, ErrorFrame)]
    assert len(errors) == 1
    assert errors[0].startswith("Speech synthesis failed: Chatterbox answered HTTP 500")
    audio, rate = audio_of(down)
    assert tone.decode(audio, rate) == tone.code(TEXT)


async def test_a_body_that_is_not_audio_is_reported(engines, http):
    engines.chatterbox.faults.garbage = True
    _, up = await run_test(tts(engines, http), frames_to_send=[TTSSpeakFrame(TEXT)])
    errors = [f.error for f in up if isinstance(f, ErrorFrame)]
    assert errors == ["Speech synthesis failed: not a WAV stream"]


async def test_interruption_closes_the_request_in_flight(engines, http):
    engines.chatterbox.backend.realtime_factor = 1.0
    long_text = " ".join(["lantern"] * 30)
    await run_test(
        tts(engines, http, timeout_s=2),
        frames_to_send=[
            TTSSpeakFrame(long_text),
            SleepFrame(0.5),
            InterruptionFrame(),
            SleepFrame(0.5),
        ],
    )
    assert engines.chatterbox.log.of_kind("speech_cancelled")
    assert not engines.chatterbox.log.of_kind("speech_done")


def test_wav_header_is_read_however_it_is_split():
    header = wav_header(22050) + b"\x01\x02"
    for cut in range(len(header) - 2):
        assert parse_wav_header(header[:cut]) is None or cut >= 44
    parsed = parse_wav_header(header)
    assert parsed is not None and parsed.sample_rate == 22050 and parsed.data_offset == 44
    with pytest.raises(ValueError):
        parse_wav_header(b"<html>")


async def test_tone_synthesizer_paces_at_the_requested_speed():
    synth = ToneSynthesizer(realtime_factor=1.0)
    started = time.monotonic()
    audio = b"".join([c async for c in synth.synthesize("one two", "v", {})])
    assert time.monotonic() - started == pytest.approx(len(audio) / 2 / 24000, rel=0.3)
    await asyncio.sleep(0)


async def test_a_server_that_dies_midway_does_not_hang_the_turn(engines, http):
    engines.chatterbox.faults.drop_mid_stream = True
    started = time.monotonic()
    down, _ = await run_test(
        tts(engines, http),
        frames_to_send=[TTSSpeakFrame(TEXT)],
    )
    assert time.monotonic() - started < 5
    assert any(isinstance(f, TTSStoppedFrame) for f in down)
    audio, rate = audio_of(down)
    assert len(tone.decode(audio, rate)) < len(tone.code(TEXT))


async def test_text_an_interruption_overtook_is_not_synthesized(engines, http):
    """On a busy loop an interruption can be handled before text queued ahead of it."""
    overtaken = AggregatedTextFrame("Old reply words", TextType.SENTENCE)
    down, _ = await run_test(
        tts(engines, http),
        frames_to_send=[
            InterruptionFrame(),
            overtaken,
            SleepFrame(0.3),
            AggregatedTextFrame(TEXT, TextType.SENTENCE),
        ],
    )
    audio, rate = audio_of(down)
    assert tone.decode(audio, rate) == tone.code(TEXT)
    assert [r["body"]["input"] for r in engines.chatterbox.log.of_kind("speech")] == [TEXT]


async def test_a_prepared_line_plays_at_once_from_the_request_made_earlier(engines, http):
    """The greeting is fetched before anyone listens, so it starts without a first-byte wait."""
    engines.chatterbox.faults.first_byte_delay_s = 1.0
    service = tts(engines, http, timeout_s=2)
    service.prepare(TEXT)
    asked: list[float] = []
    first_audio: list[float] = []

    @service.event_handler("on_before_process_frame")
    async def note_asked(_, frame):
        if isinstance(frame, TTSSpeakFrame):
            asked.append(time.monotonic())

    @service.event_handler("on_after_push_frame")
    async def note_audio(_, frame):
        if isinstance(frame, TTSAudioRawFrame) and not first_audio:
            first_audio.append(time.monotonic())

    down, up = await run_test(service, frames_to_send=[SleepFrame(1.3), TTSSpeakFrame(f" {TEXT}")])
    audio, rate = audio_of(down)
    assert tone.decode(audio, rate) == tone.code(TEXT)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    (request,) = engines.chatterbox.log.of_kind("speech")
    assert request["at"] < asked[0]
    assert first_audio[0] - asked[0] < 0.5, "no second wait for the engine's first byte"


async def test_interrupting_a_prepared_line_closes_its_request(engines, http):
    engines.chatterbox.backend.realtime_factor = 1.0
    long_text = " ".join(["lantern"] * 30)
    service = tts(engines, http, timeout_s=2)
    service.prepare(long_text)
    await run_test(
        service,
        frames_to_send=[
            TTSSpeakFrame(long_text),
            SleepFrame(0.5),
            InterruptionFrame(),
            SleepFrame(0.5),
        ],
    )
    assert len(engines.chatterbox.log.of_kind("speech")) == 1
    assert engines.chatterbox.log.of_kind("speech_cancelled")
    assert not engines.chatterbox.log.of_kind("speech_done")


async def test_a_prepared_line_never_spoken_is_dropped_when_the_session_ends(engines, http):
    engines.chatterbox.backend.realtime_factor = 1.0
    service = tts(engines, http, timeout_s=2)
    service.prepare(" ".join(["lantern"] * 30))
    await run_test(service, frames_to_send=[SleepFrame(0.5)])
    await asyncio.sleep(0.3)
    assert engines.chatterbox.log.of_kind("speech_cancelled")
    assert not engines.chatterbox.log.of_kind("speech_done")


async def test_a_prepared_line_that_failed_is_asked_for_again_when_due(engines, http):
    """An engine that failed while nobody listened yet may answer by the time it is due."""
    engines.chatterbox.faults.statuses = [500]
    service = tts(engines, http)
    service.prepare(TEXT)
    down, up = await run_test(service, frames_to_send=[SleepFrame(0.3), TTSSpeakFrame(TEXT)])
    audio, rate = audio_of(down)
    assert tone.decode(audio, rate) == tone.code(TEXT)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert len(engines.chatterbox.log.of_kind("speech")) == 2


async def test_a_prepared_line_failing_again_reports_like_any_request(engines, http):
    engines.chatterbox.faults.statuses = [500, 500]
    service = tts(engines, http)
    service.prepare(TEXT)
    _, up = await run_test(service, frames_to_send=[SleepFrame(0.3), TTSSpeakFrame(TEXT)])
    errors = [f.error for f in up if isinstance(f, ErrorFrame)]
    assert len(errors) == 1
    assert errors[0].startswith("Speech synthesis failed: Chatterbox answered HTTP 500")
