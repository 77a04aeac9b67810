"""Which transcripts stop mid-phrase, so the turn waits for the rest."""

import pytest

from processors.unfinished_phrase import DEFAULT_UNFINISHED_TURN_WORDS, ends_unfinished

pytestmark = pytest.mark.unit
ENGLISH = frozenset(DEFAULT_UNFINISHED_TURN_WORDS)


@pytest.mark.parametrize(
    ("transcript", "unfinished"),
    [
        ("I'd like to book a table for", True),
        ("I'd like to book a table for.", True),  # an STT's full stop does not end it
        ("Tell me about the", True),
        ("I was thinking, um", True),
        ("Well,", True),
        ("So I went to the shop and…", True),
        ("I'd like to book a table for four people.", False),
        ("Come in", False),
        ("I think so", False),
        ("What time is it?", False),
        ("", False),
    ],
)
def test_a_phrase_is_unfinished_when_it_ends_where_no_sentence_ends(
    transcript: str, unfinished: bool
) -> None:
    assert ends_unfinished(transcript, ENGLISH) is unfinished


def test_the_words_are_a_setting_per_language() -> None:
    french = frozenset(["pour", "de", "le", "la"])
    assert ends_unfinished("Je voudrais une table pour", french)
    assert not ends_unfinished("I'd like to book a table for", french)
