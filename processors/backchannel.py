"""Which words of a transcript count toward interrupting the bot.

A listener's "mm-hm", "yeah" or "okay" while the bot talks says "go on", not "stop":
those words are backchannels and never count; any other word does.
"""

import re

# English defaults; BACKCHANNEL_WORDS replaces them (for another language, say).
DEFAULT_BACKCHANNEL_WORDS = (
    "mm-hm",
    "mm-hmm",
    "mhm",
    "mmhm",
    "mm",
    "hm",
    "hmm",
    "uh-huh",
    "uh",
    "huh",
    "yeah",
    "yep",
    "yes",
    "okay",
    "ok",
    "right",
    "sure",
    "alright",
)

_WORD = re.compile(r"[\w'-]+")


def normalize(word: str) -> str:
    """A word as it is compared with the backchannel list: lower case, no punctuation."""
    return word.lower().strip("-'")


def real_words(text: str, backchannels: frozenset[str]) -> list[str]:
    """The words of a transcript that are not backchannels."""
    words = (normalize(w) for w in _WORD.findall(text))
    return [w for w in words if w and w not in backchannels]
