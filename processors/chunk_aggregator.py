"""Where LLM text is cut into pieces for speech.

A piece ends at a sentence boundary once it holds at least `min_chars` characters, so
the first audio can start after the first short sentence rather than the whole reply.
With `first_at_clause`, the first piece of a reply may already end at a clause
boundary (a comma, semicolon, colon or dash); later pieces keep to sentences, so the
voice stays natural once it has started.
When the model streams for `max_wait_s` without reaching such a boundary, the piece is
cut at its last word boundary instead. A cut never falls inside a word, inside a number
such as ``3.50`` or right after an abbreviation such as ``Dr.``.
"""

import re
import time
from collections.abc import AsyncIterator, Callable

from pipecat.utils.text.base_text_aggregator import Aggregation, BaseTextAggregator, TextType

# Sentence-ending punctuation (with any closing quotes or brackets), confirmed by the
# whitespace after it; or a line break.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)|\n")
# A clause ends at a comma, semicolon or colon followed by whitespace (not "1,000" or
# "3:30"), or at a dash standing between words ("Paris - it", "Paris — it", "Paris—it").
_CLAUSE_END = re.compile(r"[,;:]+[\"'”’)\]]*(?=\s)|\s[-–—]+(?=\s)|—+")
_WORD_GAP = re.compile(r"\s+")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt ft vs approx dept est fig inc ltd co corp".split()
    + ["e.g", "i.e", "a.m", "p.m"]
)


def _ends_with_abbreviation(text: str) -> bool:
    """Whether the last word of `text` is an abbreviation or an initial."""
    words = text.split()
    if not words:
        return False
    word = words[-1].lstrip("(\"'“‘").rstrip(".").lower()
    # A single letter is an initial ("J. Smith"), except the pronoun "I".
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha() and word != "i")


class ChunkAggregator(BaseTextAggregator):
    """Pipecat text aggregator that cuts at sentences, or at words when overdue."""

    def __init__(
        self,
        *,
        min_chars: int,
        max_wait_s: float,
        first_at_clause: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Initialize the aggregator.

        Args:
            min_chars: Shortest piece that may end at a sentence (or first clause) boundary.
            max_wait_s: How long a piece may wait for a boundary after its first token.
            first_at_clause: Let a reply's first piece end at a clause boundary.
            clock: Time source, replaceable in tests.
        """
        super().__init__(aggregation_type=TextType.SENTENCE)
        self._min_chars = min_chars
        self._max_wait_s = max_wait_s
        self._first_at_clause = first_at_clause
        self._clock = clock
        self._buffer = ""
        self._started_at: float | None = None
        self._first_piece = True

    @property
    def text(self) -> Aggregation:
        """The text held so far."""
        return Aggregation(self._buffer.strip(), TextType.SENTENCE)

    @property
    def deadline(self) -> float | None:
        """When the piece held now is due, on the aggregator's clock."""
        return None if self._started_at is None else self._started_at + self._max_wait_s

    def seconds_until_due(self) -> float | None:
        """How long until the piece held now is due; None when nothing is held."""
        deadline = self.deadline
        return None if deadline is None else max(0.0, deadline - self._clock())

    async def aggregate(self, text: str) -> AsyncIterator[Aggregation]:
        """Take more text; yield every piece that is now complete."""
        self._buffer += text
        if self._started_at is None and self._buffer.strip():
            self._started_at = self._clock()
        while (piece := self._take_sentence()) is not None:
            yield Aggregation(piece, TextType.SENTENCE)
        if (piece := self.take_overdue()) is not None:
            yield Aggregation(piece, TextType.SENTENCE)

    def take_overdue(self) -> str | None:
        """If the piece held is past its deadline, cut it at its last safe word gap."""
        deadline = self.deadline
        if deadline is None or self._clock() < deadline:
            return None
        # The text after the last gap may be a word still arriving, so it stays.
        for gap in reversed(list(_WORD_GAP.finditer(self._buffer.rstrip()))):
            head = self._buffer[: gap.start()]
            if head.strip() and not _ends_with_abbreviation(head):
                return self._cut(gap.end())
        return None

    def _take_sentence(self) -> str | None:
        boundaries = list(_SENTENCE_END.finditer(self._buffer))
        if self._first_piece and self._first_at_clause:
            boundaries = sorted(
                [*boundaries, *_CLAUSE_END.finditer(self._buffer)], key=lambda b: b.end()
            )
        for boundary in boundaries:
            head = self._buffer[: boundary.end()]
            if len(head.strip()) < self._min_chars:
                continue
            if boundary.group() != "\n" and _ends_with_abbreviation(head):
                continue
            return self._cut(boundary.end())
        return None

    def _cut(self, end: int) -> str:
        piece = self._buffer[:end].strip()
        self._buffer = self._buffer[end:].lstrip()
        self._started_at = self._clock() if self._buffer else None
        self._first_piece = False
        return piece

    async def flush(self) -> Aggregation | None:
        """Return whatever is held at the end of the reply."""
        piece = self._buffer.strip()
        await self.reset()
        return Aggregation(piece, TextType.SENTENCE) if piece else None

    async def handle_interruption(self) -> None:
        """Drop what is held: nothing of an interrupted reply may be spoken later."""
        await self.reset()

    async def reset(self) -> None:
        """Forget the text held."""
        self._buffer = ""
        self._started_at = None
        self._first_piece = True
