"""The one rule for room and participant names, shared by the API, the settings and the bot.

Letters, digits, `-` and `_` only, so a name is safe in a URL path, a token claim, a
log field and a command line alike.
"""

import re

NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"
NAME_RULE = "1 to 64 letters, digits, '-' or '_'"
_NAME = re.compile(NAME_PATTERN)


def is_valid_name(value: str) -> bool:
    """Whether `value` follows the rule."""
    return bool(_NAME.fullmatch(value))
