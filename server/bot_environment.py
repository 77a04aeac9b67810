"""The environment a bot process starts with: its settings and the OS basics, nothing else."""

import os

from pydantic import SecretStr

from bot.settings import SERVER_ONLY_FIELDS, Settings

# Process basics a Python program needs to start and find its packages.
_PASSTHROUGH = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TZ",
    "TMPDIR",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "HF_HOME",
    "HF_HUB_OFFLINE",
)


def env_value(value: object) -> str:
    """A setting's value as an environment variable spells it."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


def bot_environment(settings: Settings) -> dict[str, str]:
    """Every bot setting as a variable; server settings such as ADMIN_TOKEN left out.

    Bots log JSON whatever the server's format, because the server parses their lines.
    """
    env = {name: os.environ[name] for name in _PASSTHROUGH if name in os.environ}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if name not in SERVER_ONLY_FIELDS and value is not None:
            env[name.upper()] = env_value(value)
    env["LOG_FORMAT"] = "json"
    env["PYTHONUNBUFFERED"] = "1"
    return env
