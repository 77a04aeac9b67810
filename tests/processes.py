"""The environment the tests start their child processes with (session server, worker hosts)."""

import os
from collections.abc import Mapping

from bot.launch import env_value


def process_env(settings: Mapping[str, object]) -> dict[str, str]:
    """PATH, HOME and `settings` as variables (upper-cased names), nothing else.

    Nothing else from the test's own environment leaks in, and output is unbuffered, so a
    child's log file is complete when a test reads it.
    """
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONUNBUFFERED": "1",
        **{name.upper(): env_value(value) for name, value in settings.items()},
    }
