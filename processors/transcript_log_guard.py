"""Keeps what was said out of the logs, whoever logs it."""

from pipecat.frames.frames import AggregatedTextFrame, InterimTranscriptionFrame, TranscriptionFrame
from pipecat.observers.base_observer import BaseObserver, FramePushed

from processors.redaction import Redactor


class TranscriptLogGuard(BaseObserver):
    """Hands every transcript and every spoken sentence to the log redactor.

    The redactor then withholds that text from any later log line, whichever library
    writes it. Pipecat's own debug lines that quote text are caught by pattern in the
    sink; this catches the rest (frame reprs, exception messages, context dumps).
    """

    def __init__(self, *, redactor: Redactor, **kwargs) -> None:
        """Initialize the guard.

        Args:
            redactor: The redactor installed by the logging setup.
            **kwargs: Passed to `BaseObserver`.
        """
        super().__init__(observe_every_push=False, **kwargs)
        self._redactor = redactor

    async def on_push_frame(self, data: FramePushed) -> None:
        """Register conversation text the first time it is pushed."""
        frame = data.frame
        if data.first_push and isinstance(
            frame, (TranscriptionFrame, InterimTranscriptionFrame, AggregatedTextFrame)
        ):
            self._redactor.track_conversation_text(frame.text)
