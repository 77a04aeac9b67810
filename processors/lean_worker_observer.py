"""Pipecat's observer fan-out without the traffic nobody here reads.

Pipecat hands every observer, through its own queue and task, each frame a processor
processes and each push between processors. Microphone audio (a frame every 32 ms,
passed on by several processors), the bot's audio (a chunk every 40 ms once played,
besides the TTS's own frames) and the processed-frame events then made most of a
bot's Python CPU, yet none of this bot's observers reads them. This one delivers
processed-frame events only to observers that override `on_process_frame`, pushes of
`InputAudioRawFrame` only when an observer sets `observes_input_audio = True`, and of
output audio only from a TTS service (whose first frame the turn metrics time) unless
an observer sets `observes_output_audio = True`.
"""

from pipecat.frames.frames import InputAudioRawFrame, OutputAudioRawFrame
from pipecat.observers.base_observer import BaseObserver, FrameProcessed, FramePushed
from pipecat.pipeline.worker import PipelineWorker
from pipecat.pipeline.worker_observer import WorkerObserver
from pipecat.services.tts_service import TTSService


def _reads_processed_frames(observer: BaseObserver) -> bool:
    return type(observer).on_process_frame is not BaseObserver.on_process_frame


def _reads(observer: BaseObserver, audio: str) -> bool:
    return bool(getattr(observer, f"observes_{audio}_audio", False))


class LeanWorkerObserver(WorkerObserver):
    """A `WorkerObserver` that skips the events its observers ignore anyway."""

    async def on_process_frame(self, data: FrameProcessed) -> None:
        """Queue a processed frame for the observers that read them."""
        for proxy in (self._proxies or {}).values():
            if _reads_processed_frames(proxy.observer):
                await proxy.queue.put(data)

    async def on_push_frame(self, data: FramePushed) -> None:
        """Queue a push; microphone and played audio only if an observer reads it."""
        frame = data.frame
        if isinstance(frame, InputAudioRawFrame):
            audio = "input"
        elif isinstance(frame, OutputAudioRawFrame) and not isinstance(data.source, TTSService):
            audio = "output"
        else:
            await super().on_push_frame(data)
            return
        if any(_reads(proxy.observer, audio) for proxy in (self._proxies or {}).values()):
            await super().on_push_frame(data)


def use_lean_observer(worker: PipelineWorker) -> None:
    """Give a worker that has not started a `LeanWorkerObserver` for its observers."""
    # Pipecat 1.14 builds its WorkerObserver in PipelineWorker.__init__ with no hook.
    worker._observer = LeanWorkerObserver(observers=worker._observer._observers)
