"""Tokens as the API hands them out: the configured key, TTL and client-facing URL."""

from datetime import timedelta

from bot.settings import Settings
from bot.tokens import IssuedToken, ParticipantType, mint_token


def issue_token(
    settings: Settings, *, room: str, identity: str, participant_type: ParticipantType
) -> IssuedToken:
    """A token for one room that expires after TOKEN_TTL_SECONDS."""
    return mint_token(
        api_key=settings.livekit_api_key.get_secret_value(),
        api_secret=settings.livekit_api_secret.get_secret_value(),
        room=room,
        identity=identity,
        participant_type=participant_type,
        ttl=timedelta(seconds=settings.token_ttl_seconds),
    )
