"""Which words of a transcript count toward interrupting the bot."""

import pytest

from processors.backchannel import DEFAULT_BACKCHANNEL_WORDS, real_words

pytestmark = pytest.mark.unit
ENGLISH = frozenset(DEFAULT_BACKCHANNEL_WORDS)


@pytest.mark.parametrize(
    ("transcript", "real"),
    [
        ("Mm-hm.", []),
        ("Yeah, okay. Right!", []),
        ("Uh-huh", []),
        ("Yeah, but wait", ["but", "wait"]),
        ("Stop, what time is it?", ["stop", "what", "time", "is", "it"]),
        ("Okay, I'd rather not.", ["i'd", "rather", "not"]),
    ],
)
def test_only_words_that_are_not_backchannels_count(transcript: str, real: list[str]) -> None:
    assert real_words(transcript, ENGLISH) == real
