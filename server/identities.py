"""Fresh room and identity names: unguessable, and within `[a-zA-Z0-9_-]{1,64}`."""

import secrets

from server.errors import ApiError


def new_room_name() -> str:
    """A room nobody can guess, so nobody can walk into someone else's conversation."""
    return f"room-{secrets.token_urlsafe(12)}"


def new_identity() -> str:
    """A participant identity for a caller that did not choose one."""
    return f"user-{secrets.token_hex(6)}"


def ensure_not_bot_identity(identity: str, bot_identity: str) -> None:
    """Refuse the bot's own identity: LiveKit would disconnect the bot for the newcomer."""
    if identity == bot_identity:
        raise ApiError(
            422,
            "invalid_request",
            f"identity: {identity!r} is reserved for the voice agent",
        )
