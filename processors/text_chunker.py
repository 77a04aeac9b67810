"""The one text aggregation stage between the LLM and the TTS."""

import asyncio
from dataclasses import dataclass

from pipecat.frames.frames import (
    ControlFrame,
    EndFrame,
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMTextFrame,
    TextFrame,
)
from pipecat.processors.aggregators.llm_text_processor import LLMTextProcessor
from pipecat.processors.frame_processor import FrameDirection
from pipecat.utils.text.base_text_aggregator import Aggregation, TextType

from processors.chunk_aggregator import ChunkAggregator
from services.interruption_fence import InterruptionFence


@dataclass
class _ChunkDueFrame(ControlFrame):
    """Reminds the chunker, in frame order, that the text it holds may be overdue."""


class TextChunker(LLMTextProcessor):
    """Pipecat's LLM text processor with `ChunkAggregator` and a deadline timer.

    The aggregator alone only looks at the clock when text arrives; the timer makes a
    piece come out on time even when the model pauses mid-sentence. The timer does not
    push anything itself: it queues a reminder that is handled in order with the text
    frames, so pieces can never overtake each other or the end of the reply. The TTS
    receives ready-made `AggregatedTextFrame`s and does not aggregate again.
    """

    def __init__(
        self, *, min_chars: int, max_wait_s: float, first_at_clause: bool = False, **kwargs
    ) -> None:
        """Initialize the chunker.

        Args:
            min_chars: Shortest piece that may end at a sentence (or first clause) boundary.
            max_wait_s: How long a piece may wait for a boundary.
            first_at_clause: Let a reply's first piece end at a clause boundary.
            **kwargs: Passed to `LLMTextProcessor`.
        """
        self._chunks = ChunkAggregator(
            min_chars=min_chars, max_wait_s=max_wait_s, first_at_clause=first_at_clause
        )
        super().__init__(text_aggregator=self._chunks, **kwargs)
        self._timer: asyncio.Task | None = None
        self._timer_deadline: float | None = None
        self._skip_tts_of_reply: bool | None = None
        self._fence = InterruptionFence(kinds=(TextFrame,))

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Cut text into pieces; keep the deadline timer in step with the text held.

        Text of a reply that an interruption overtook in the input queue is dropped.
        """
        if self._fence.overtaken(frame, direction):
            return
        if isinstance(frame, _ChunkDueFrame):
            # Our own reminder: the base frame bookkeeping only, never forwarded.
            await super(LLMTextProcessor, self).process_frame(frame, direction)
            await self._push_overdue_piece()
        else:
            await super().process_frame(frame, direction)
        if isinstance(frame, LLMTextFrame):
            self._skip_tts_of_reply = frame.skip_tts
        if isinstance(frame, (InterruptionFrame, LLMFullResponseEndFrame, EndFrame)):
            await self._cancel_timer()
        elif isinstance(frame, (LLMTextFrame, _ChunkDueFrame)):
            await self._arm_timer()

    async def _push_overdue_piece(self) -> None:
        piece = self._chunks.take_overdue()
        if piece is None:
            return
        out_frame = await self._aggregated_text_frame(Aggregation(piece, TextType.SENTENCE))
        if out_frame:
            out_frame.skip_tts = self._skip_tts_of_reply
            await self.push_frame(out_frame)

    async def _arm_timer(self) -> None:
        """Time the piece held now; a token that leaves the deadline alone costs nothing."""
        deadline = self._chunks.deadline
        if deadline == self._timer_deadline and self._timer is not None:
            return
        await self._cancel_timer()
        delay = self._chunks.seconds_until_due()
        # Already overdue means no safe cut yet: the next token is checked on arrival.
        if delay:
            self._timer_deadline = deadline
            self._timer = self.create_task(self._remind_after(delay), "chunk_deadline")

    async def _remind_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._timer = None
        await self.queue_frame(_ChunkDueFrame())

    async def _cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        self._timer_deadline = None
        if timer is not None and timer is not asyncio.current_task():
            await self.cancel_task(timer)

    async def cleanup(self) -> None:
        """Stop the timer with the processor."""
        await super().cleanup()
        await self._cancel_timer()
