"""Which frames an interruption overtook in a processor's input queue.

Pipecat queues a processor's input with system frames first, so an `InterruptionFrame`
can be handled before data frames that were created ahead of it and were still
waiting; those then arrive after it as if they were new, and the interrupted reply
goes on (a question answered twice, words of the old reply spoken). Frame ids grow
with creation, so a frame older than the last interruption belongs to what was
interrupted.
"""

from pipecat.frames.frames import Frame, InterruptionFrame
from pipecat.processors.frame_processor import FrameDirection


class InterruptionFence:
    """Remembers the last downstream interruption; tells the frames created before it."""

    def __init__(self, kinds: tuple[type[Frame], ...]) -> None:
        """Fence off frames of these kinds only (the rest always pass)."""
        self._kinds = kinds
        self._last_interruption_id = -1

    def overtaken(self, frame: Frame, direction: FrameDirection) -> bool:
        """Note an interruption; whether a downstream `frame` of the kinds predates the last one."""
        if direction != FrameDirection.DOWNSTREAM:
            return False
        if isinstance(frame, InterruptionFrame):
            self._last_interruption_id = frame.id
            return False
        return isinstance(frame, self._kinds) and frame.id < self._last_interruption_id
