"""Microphone audio goes no further than it must, and observers get only what they read."""

import asyncio
from collections.abc import AsyncGenerator

import pytest
from pipecat.frames.frames import (
    EndFrame,
    Frame,
    InputAudioRawFrame,
    OutputAudioRawFrame,
    TextFrame,
    TTSAudioRawFrame,
)
from pipecat.observers.base_observer import BaseObserver, FrameProcessed, FramePushed
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.tts_service import TTSService
from pipecat.tests.utils import run_test
from pipecat.workers.runner import WorkerRunner

from processors.input_audio_end import InputAudioEnd
from processors.lean_worker_observer import use_lean_observer

pytestmark = pytest.mark.unit
AUDIO = InputAudioRawFrame(audio=bytes(640), sample_rate=16000, num_channels=1)
PLAYED = OutputAudioRawFrame(audio=bytes(960), sample_rate=24000, num_channels=1)


async def test_input_audio_ends_there_and_everything_else_passes() -> None:
    down, _ = await run_test(
        InputAudioEnd(),
        frames_to_send=[AUDIO, TextFrame("hello")],
        expected_down_frames=[TextFrame],
    )
    assert [f.text for f in down if isinstance(f, TextFrame)] == ["hello"]


class Recorder(BaseObserver):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.pushed: list[type[Frame]] = []

    async def on_push_frame(self, data: FramePushed) -> None:
        self.pushed.append(type(data.frame))


class AudioRecorder(Recorder):
    observes_input_audio = True


class PlayedAudioRecorder(Recorder):
    observes_output_audio = True


class ProcessRecorder(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.processed: list[type[Frame]] = []

    async def on_process_frame(self, data: FrameProcessed) -> None:
        self.processed.append(type(data.frame))


class Passing(FrameProcessor):
    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)


async def observe(
    *observers: BaseObserver,
    processors: list[FrameProcessor] | None = None,
    frames: tuple[Frame, ...] = (AUDIO, PLAYED, TextFrame("hello")),
) -> None:
    """Send microphone audio and a text frame through two processors, lean observer on."""
    worker = PipelineWorker(
        Pipeline(processors or [Passing(), Passing()]),
        observers=list(observers),
        enable_rtvi=False,
        cancel_on_idle_timeout=False,
    )
    use_lean_observer(worker)
    started = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def ready(*_: object) -> None:
        started.set()

    async def feed() -> None:
        await asyncio.wait_for(started.wait(), 10)
        for frame in (*frames, EndFrame()):
            await worker.queue_frame(frame)

    runner = WorkerRunner(handle_sigint=False, handle_sigterm=False)
    await runner.add_workers(worker)
    await asyncio.wait_for(asyncio.gather(runner.run(), feed()), 20)


async def test_observers_get_no_microphone_audio_and_processed_frames_only_if_they_read_them() -> (
    None
):
    plain, processing = Recorder(), ProcessRecorder()
    await observe(plain, processing)
    assert TextFrame in plain.pushed and InputAudioRawFrame not in plain.pushed
    assert TextFrame in processing.pushed and InputAudioRawFrame not in processing.pushed
    assert TextFrame in processing.processed and InputAudioRawFrame in processing.processed


async def test_an_observer_that_reads_microphone_audio_gets_it() -> None:
    audio = AudioRecorder()
    await observe(audio)
    assert InputAudioRawFrame in audio.pushed and TextFrame in audio.pushed


async def test_played_audio_reaches_only_an_observer_that_reads_it() -> None:
    plain, played = Recorder(), PlayedAudioRecorder()
    await observe(plain)
    await observe(played)
    assert OutputAudioRawFrame not in plain.pushed and TextFrame in plain.pushed
    assert OutputAudioRawFrame in played.pushed


async def test_a_tts_services_audio_still_reaches_every_observer() -> None:
    class Voice(TTSService):
        async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
            yield None

    plain = Recorder()
    spoken = TTSAudioRawFrame(bytes(960), 24000, 1)
    await observe(plain, processors=[Voice(sample_rate=24000), Passing()], frames=(spoken,))
    assert plain.pushed.count(TTSAudioRawFrame) == 1  # from the TTS only, not once played
