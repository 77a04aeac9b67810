import pytest

from processors.chunk_aggregator import ChunkAggregator

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def feed(aggregator: ChunkAggregator, *tokens: str) -> list[str]:
    pieces = []
    for token in tokens:
        pieces += [a.text async for a in aggregator.aggregate(token)]
    return pieces


async def flushed(aggregator: ChunkAggregator) -> str | None:
    """What a flush hands over at the end of a reply; None when nothing was left."""
    rest = await aggregator.flush()
    return rest.text if rest else None


def aggregator(min_chars: int = 16, max_wait_s: float = 0.2) -> tuple[ChunkAggregator, Clock]:
    clock = Clock()
    return ChunkAggregator(min_chars=min_chars, max_wait_s=max_wait_s, clock=clock), clock


async def test_cuts_at_sentence_end_once_long_enough():
    chunks, _ = aggregator(min_chars=16)
    pieces = await feed(chunks, "Hi. ", "How are you ", "today? I am ", "fine.")
    assert pieces == ["Hi. How are you today?"]
    assert await flushed(chunks) == "I am fine."


async def test_short_sentence_is_cut_when_min_chars_allows():
    chunks, _ = aggregator(min_chars=2)
    assert await feed(chunks, "Hi. ", "There.") == ["Hi."]


async def test_never_splits_numbers_or_abbreviations():
    chunks, _ = aggregator(min_chars=1)
    pieces = await feed(chunks, "It costs 3", ".50 today", ". Ask Dr", ". Smith or Mr. ", "Jones. ")
    assert pieces == ["It costs 3.50 today.", "Ask Dr. Smith or Mr. Jones."]


async def test_overdue_piece_is_cut_at_the_last_word_gap():
    chunks, clock = aggregator(max_wait_s=0.2)
    assert await feed(chunks, "Well I think that the answ") == []
    clock.now += 0.25
    assert chunks.take_overdue() == "Well I think that the"
    assert chunks.text.text == "answ"


async def test_overdue_cut_happens_on_arrival_of_a_late_token():
    chunks, clock = aggregator(max_wait_s=0.2)
    await feed(chunks, "Counting one two")
    clock.now += 0.3
    assert await feed(chunks, " three") == ["Counting one two"]


async def test_overdue_cut_skips_a_gap_after_an_abbreviation():
    chunks, clock = aggregator()
    await feed(chunks, "I saw Dr. Who")
    clock.now += 1
    assert chunks.take_overdue() == "I saw"


async def test_not_overdue_before_the_deadline_and_nothing_to_cut_in_one_word():
    chunks, clock = aggregator(max_wait_s=0.2)
    await feed(chunks, "Supercalifragilistic")
    clock.now += 0.1
    assert chunks.take_overdue() is None
    clock.now += 1
    assert chunks.take_overdue() is None  # a single word is never split


async def test_deadline_counts_from_the_pieces_first_token():
    chunks, clock = aggregator(max_wait_s=0.2)
    assert chunks.deadline is None
    await feed(chunks, "   ")
    assert chunks.deadline is None
    await feed(chunks, "Hello")
    assert chunks.deadline == pytest.approx(100.2)


async def test_interruption_drops_everything_held():
    chunks, _ = aggregator()
    await feed(chunks, "This sentence must never be spoken")
    await chunks.handle_interruption()
    assert await chunks.flush() is None
    assert chunks.deadline is None


async def test_line_break_ends_a_piece():
    chunks, _ = aggregator(min_chars=4)
    assert await feed(chunks, "First item here\n", "second") == ["First item here"]


async def test_first_piece_may_end_at_a_clause_later_ones_at_sentences():
    chunks = ChunkAggregator(min_chars=16, max_wait_s=5, first_at_clause=True)
    reply = "Right now in Paris, it is sunny, twenty degrees: enjoy it. Later, it may rain."
    pieces = await feed(chunks, *(word + " " for word in reply.split(" ")))
    assert await chunks.flush() is None
    assert pieces == [
        "Right now in Paris,",
        "it is sunny, twenty degrees: enjoy it.",
        "Later, it may rain.",
    ]
    # The next reply starts afresh: its first piece may end at a clause again.
    assert await feed(chunks, "Of course, my friend, ", "here it is.") == ["Of course, my friend,"]


async def test_first_clause_needs_min_chars_and_never_splits_numbers():
    chunks = ChunkAggregator(min_chars=16, max_wait_s=5, first_at_clause=True)
    pieces = await feed(chunks, "Yes, it costs 1,000 ", "euros - or 3:30 ", "hours of work; sadly.")
    assert pieces == ["Yes, it costs 1,000 euros -"]
    assert await flushed(chunks) == "or 3:30 hours of work; sadly."


async def test_clause_boundaries_are_ignored_unless_asked_for():
    chunks, _ = aggregator(min_chars=16)
    assert await feed(chunks, "Right now in Paris, ", "it is sunny. ") == [
        "Right now in Paris, it is sunny."
    ]
