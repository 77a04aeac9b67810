import asyncio
from typing import Any

import pytest
from pipecat.frames.frames import (
    ErrorFrame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    STTUpdateSettingsFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.tests.utils import SleepFrame, run_test

from engines.backends import TranscriptionStream
from engines.scripted import ScriptedTranscriber
from services.voxtral import TIMEOUT_MESSAGE
from services.voxtral_realtime_stt import VoxtralRealtimeSTTService
from services.voxtral_segmented_stt import VoxtralSegmentedSTTService
from tests.conftest import SECRETS, VOXTRAL_MODEL, running_engines

pytestmark = pytest.mark.unit
CHUNK = bytes(range(256)) * 2 + bytes(128)  # 20 ms of 16 kHz PCM16: 640 bytes
assert len(CHUNK) == 640


def utterance(seconds: float = 1.0, settle: float = 0.6) -> list:
    chunks = [InputAudioRawFrame(CHUNK, 16000, 1) for _ in range(int(seconds / 0.02))]
    return [
        VADUserStartedSpeakingFrame(start_secs=0.2),
        *chunks,
        VADUserStoppedSpeakingFrame(stop_secs=0.4),
        SleepFrame(settle),
    ]


def realtime(engines, **kwargs) -> VoxtralRealtimeSTTService:
    options: dict[str, Any] = {
        "url": f"ws://{engines.voxtral.served.host}:{engines.voxtral.served.port}/v1/realtime",
        "settings": VoxtralRealtimeSTTService.Settings(model=VOXTRAL_MODEL),
        "api_key": SECRETS["voxtral_api_key"],
        "timeout_s": 0.4,
        "preroll_secs": 0.0,
    }
    return VoxtralRealtimeSTTService(**(options | kwargs))


def segmented(engines, http, **kwargs) -> VoxtralSegmentedSTTService:
    options = {
        "base_url": engines.voxtral.url,
        "settings": VoxtralSegmentedSTTService.Settings(model=VOXTRAL_MODEL),
        "aiohttp_session": http,
        "api_key": SECRETS["voxtral_api_key"],
        "timeout_s": 0.4,
    }
    return VoxtralSegmentedSTTService(**(options | kwargs))


def transcripts(frames) -> list[str]:
    return [f.text for f in frames if type(f) is TranscriptionFrame]


def errors(frames) -> list[str]:
    return [f.error for f in frames if isinstance(f, ErrorFrame)]


async def when(condition, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_realtime_streams_speech_and_shows_partials_before_the_final(engines):
    engines.transcripts[:] = ["turn the kitchen lights on please"]
    down, up = await run_test(realtime(engines), frames_to_send=utterance(1.5))
    texts = [
        (type(f), f.text)
        for f in down
        if isinstance(f, InterimTranscriptionFrame | TranscriptionFrame)
    ]
    assert texts[-1] == (TranscriptionFrame, "turn the kitchen lights on please")
    partials = [t for kind, t in texts if kind is InterimTranscriptionFrame]
    assert partials and all("turn the kitchen lights on please".startswith(p) for p in partials)
    assert not errors(up)
    log = engines.voxtral.log
    assert log.of_kind("session.update")[0]["model"] == VOXTRAL_MODEL
    assert log.of_kind("realtime_connect")[0]["headers"]["Authorization"] == (
        f"Bearer {SECRETS['voxtral_api_key']}"
    )
    assert log.of_kind("utterance")[0]["audio_bytes"] == 75 * len(CHUNK)


async def test_realtime_sends_preroll_so_the_first_syllable_is_kept(engines):
    before = [InputAudioRawFrame(CHUNK, 16000, 1) for _ in range(25)]  # 0.5 s before VAD
    await run_test(realtime(engines, preroll_secs=0.2), frames_to_send=[*before, *utterance(1.0)])
    assert engines.voxtral.log.of_kind("utterance")[0]["audio_bytes"] == (10 + 50) * len(CHUNK)


async def test_realtime_reconnects_by_itself_when_the_server_goes_away(engines):
    engines.transcripts[:] = ["first words", "second words"]
    service = realtime(engines)

    async def restart_server() -> None:
        await when(lambda: engines.voxtral.log.of_kind("utterance"))
        await asyncio.sleep(0.3)
        await engines.voxtral.stop()
        await asyncio.sleep(0.3)
        await engines.voxtral.restart()

    restart = asyncio.create_task(restart_server())
    down, up = await run_test(
        service, frames_to_send=[*utterance(0.5, settle=3.0), *utterance(0.5)]
    )
    await restart
    await engines.voxtral.served.close()
    assert transcripts(down) == ["first words", "second words"]
    assert len(engines.voxtral.log.of_kind("realtime_connect")) >= 2


async def test_realtime_outage_at_end_of_speech_errors_then_the_next_turn_works(engines):
    engines.transcripts[:] = ["heard after the outage"]

    async def outage() -> None:
        await when(lambda: engines.voxtral.log.of_kind("session.update"))
        await engines.voxtral.stop()
        await asyncio.sleep(1.6)  # past both deadlines of the first utterance
        await engines.voxtral.restart()

    outage_task = asyncio.create_task(outage())
    down, up = await run_test(
        realtime(engines, timeout_s=0.3),
        frames_to_send=[SleepFrame(0.2), *utterance(0.5, settle=2.5), *utterance(0.5, settle=2.0)],
    )
    await outage_task
    assert errors(up) == [TIMEOUT_MESSAGE]
    assert transcripts(down) == ["heard after the outage"]


async def test_realtime_replays_the_utterance_when_the_socket_drops_mid_stream(engines):
    engines.transcripts[:] = ["one two three four five six"]
    engines.voxtral.faults.drop_mid_stream = True

    async def heal() -> None:
        await when(lambda: len(engines.voxtral.log.of_kind("realtime_connect")) >= 1)
        await asyncio.sleep(0.2)
        engines.voxtral.faults.drop_mid_stream = False

    healing = asyncio.create_task(heal())
    down, up = await run_test(realtime(engines), frames_to_send=utterance(1.5, settle=1.5))
    await healing
    assert transcripts(down) == ["one two three four five six"]
    assert len(engines.voxtral.log.of_kind("realtime_connect")) >= 2


async def test_realtime_timeout_retries_once_then_errors_and_the_next_turn_works(engines):
    engines.transcripts[:] = ["lost words", "found words"]
    engines.voxtral.faults.hang = True

    async def recover() -> None:
        await when(lambda: len(engines.voxtral.log.of_kind("utterance")) >= 2)
        engines.voxtral.faults.hang = False

    recovering = asyncio.create_task(recover())
    down, up = await run_test(
        realtime(engines, timeout_s=0.3),
        frames_to_send=[*utterance(0.5, settle=1.5), *utterance(0.5, settle=1.0)],
    )
    await recovering
    assert errors(up) == [TIMEOUT_MESSAGE]
    assert len(engines.voxtral.log.of_kind("utterance")) == 3  # original, retry, next turn
    assert transcripts(down) == ["found words"]


async def test_realtime_retry_succeeds_when_the_server_recovers(engines):
    engines.transcripts[:] = ["patience pays"]
    engines.voxtral.faults.hang = True

    async def recover() -> None:
        await when(lambda: len(engines.voxtral.log.of_kind("utterance")) >= 1)
        engines.voxtral.faults.hang = False

    recovering = asyncio.create_task(recover())
    down, up = await run_test(realtime(engines, timeout_s=0.3), frames_to_send=utterance(0.5, 1.5))
    await recovering
    assert not errors(up)
    assert transcripts(down) == ["patience pays"]


async def test_realtime_reports_what_the_server_rejects(engines):
    _, up = await run_test(
        realtime(engines, settings=VoxtralRealtimeSTTService.Settings(model="no-such-model")),
        frames_to_send=utterance(0.3),
    )
    assert any("Voxtral error: The model `no-such-model` does not exist." in e for e in errors(up))


async def test_realtime_speech_during_a_pending_transcript_is_queued_in_order(engines):
    engines.transcripts[:] = ["alpha", "beta"]
    engines.voxtral.faults.latency_s = 0.3  # the first transcript is slow
    down, _ = await run_test(
        realtime(engines, timeout_s=2),
        frames_to_send=[*utterance(0.4, settle=0.05), *utterance(0.4, settle=1.5)],
    )
    assert transcripts(down) == ["alpha", "beta"]


async def test_segmented_posts_a_wav_and_reads_the_event_stream(engines, http):
    engines.transcripts[:] = ["what time is it"]
    down, up = await run_test(segmented(engines, http), frames_to_send=utterance(1.0))
    assert transcripts(down) == ["what time is it"]
    assert any(isinstance(f, InterimTranscriptionFrame) for f in down)
    (request,) = engines.voxtral.log.of_kind("transcription")
    assert request["stream"] is True and request["model"] == VOXTRAL_MODEL
    assert request["headers"]["Authorization"] == f"Bearer {SECRETS['voxtral_api_key']}"
    # The segment holds the speech plus the trailing silence the base class appends.
    assert 1.0 <= request["audio_bytes"] / 32000 <= 2.2


async def test_segmented_timeout_retries_once_then_errors_and_the_next_turn_works(engines, http):
    engines.transcripts[:] = ["found words"]
    engines.voxtral.faults.hang = True

    async def recover() -> None:
        await when(lambda: len(engines.voxtral.log.of_kind("transcription")) >= 2)
        await asyncio.sleep(0.5)
        engines.voxtral.faults.hang = False

    recovering = asyncio.create_task(recover())
    down, up = await run_test(
        segmented(engines, http, timeout_s=0.3),
        frames_to_send=[*utterance(0.3, settle=1.2), *utterance(0.3, settle=1.0)],
    )
    await recovering
    assert errors(up) == [TIMEOUT_MESSAGE]
    assert len(engines.voxtral.log.of_kind("transcription")) == 3
    assert transcripts(down) == ["found words"]


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ({"garbage": True}, "Speech recognition failed: Voxtral ended the stream without [DONE]"),
        ({"statuses": [500]}, "Speech recognition failed: Voxtral answered HTTP 500"),
    ],
)
async def test_segmented_reports_bad_answers(engines, http, fault, message):
    for name, value in fault.items():
        setattr(engines.voxtral.faults, name, value)
    _, up = await run_test(segmented(engines, http), frames_to_send=utterance(0.3))
    assert len(errors(up)) == 1 and errors(up)[0].startswith(message)


class RecordingTranscriber:
    """Transcribes every utterance as "heard" and keeps the PCM the server received."""

    def __init__(self) -> None:
        self._script = ScriptedTranscriber(["heard"])
        self.audio: list[bytearray] = []

    def open_stream(self) -> "RecordingStream":
        self.audio.append(bytearray())
        return RecordingStream(self._script.open_stream(), self.audio[-1])


class RecordingStream:
    def __init__(self, inner: TranscriptionStream, audio: bytearray) -> None:
        self._inner = inner
        self._audio = audio

    async def feed(self, pcm: bytes) -> str:
        self._audio.extend(pcm)
        return await self._inner.feed(pcm)

    async def finish(self) -> str:
        return await self._inner.finish()


async def test_realtime_delivers_the_speech_to_the_server_byte_for_byte():
    transcriber = RecordingTranscriber()
    speech = [bytes([n]) * 640 for n in range(1, 26)]  # 0.5 s, each chunk distinct
    frames = [
        VADUserStartedSpeakingFrame(start_secs=0.2),
        *[InputAudioRawFrame(chunk, 16000, 1) for chunk in speech],
        VADUserStoppedSpeakingFrame(stop_secs=0.4),
        SleepFrame(0.6),
    ]
    async with running_engines(transcriber=transcriber) as engines:
        down, _ = await run_test(realtime(engines), frames_to_send=frames)
    assert transcripts(down) == ["heard"]
    assert [bytes(a) for a in transcriber.audio] == [b"".join(speech)]


async def test_realtime_model_change_opens_a_session_with_the_new_model(engines):
    engines.transcripts[:] = ["after the switch"]
    new_model = "mistralai/Voxtral-Small"
    down, up = await run_test(
        realtime(engines),
        frames_to_send=[
            SleepFrame(0.3),
            STTUpdateSettingsFrame(delta=VoxtralRealtimeSTTService.Settings(model=new_model)),
            SleepFrame(0.5),
        ],
    )
    models = [u["model"] for u in engines.voxtral.log.of_kind("session.update")]
    assert models == [VOXTRAL_MODEL, new_model]
    assert any(new_model in e for e in errors(up))  # the stand-in serves only one model
