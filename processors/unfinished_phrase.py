"""Whether a transcript stops where a sentence cannot end: the user is mid-thought.

"I'd like to book a table for…" ends on a word no finished sentence ends on; a person
hearing it waits for the rest. A transcript ending on such a word (a setting, per
language), or on a comma, a dash or an ellipsis, holds the turn open longer.
"""

import re

from processors.backchannel import normalize

# English defaults; UNFINISHED_TURN_WORDS replaces them (for another language, say).
# Only words that cannot end a sentence: "in", "on", "so", "that" can ("come in").
DEFAULT_UNFINISHED_TURN_WORDS = (
    "a",
    "an",
    "the",
    "to",
    "for",
    "of",
    "with",
    "from",
    "into",
    "about",
    "at",
    "by",
    "and",
    "or",
    "but",
    "because",
    "if",
    "than",
    "my",
    "your",
    "our",
    "their",
    "its",
    "um",
    "uh",
    "er",
)

_LAST_WORD = re.compile(r"([\w'-]+)\W*$")
_OPEN_ENDING = re.compile(r"(,|-|–|—|…|\.\.\.)\s*$")


def ends_unfinished(text: str, words: frozenset[str]) -> bool:
    """Whether the transcript stops mid-phrase."""
    if _OPEN_ENDING.search(text):
        return True
    last = _LAST_WORD.search(text)
    return last is not None and normalize(last.group(1)) in words
