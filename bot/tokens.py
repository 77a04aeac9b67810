"""LiveKit access tokens, one room each, with the grants each kind of participant needs.

The bot mints its own agent token and the session server mints everyone's, so both use
this one definition of what a user, an observer and an agent may do.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from livekit import api

ParticipantType = Literal["user", "observer", "agent"]


def _grants(participant_type: ParticipantType, room: str) -> api.VideoGrants:
    """What each kind of participant may do in its one room."""
    if participant_type == "user":
        # Publishes its microphone and data messages (RTVI), hears the bot.
        return api.VideoGrants(
            room_join=True,
            room=room,
            can_publish=True,
            can_publish_sources=["microphone"],
            can_subscribe=True,
            can_publish_data=True,
        )
    if participant_type == "observer":
        # Listens only, and stays out of the participant list so the bot ignores it.
        return api.VideoGrants(
            room_join=True,
            room=room,
            can_publish=False,
            can_subscribe=True,
            can_publish_data=False,
            hidden=True,
        )
    return api.VideoGrants(
        room_join=True,
        room=room,
        can_publish=True,
        can_subscribe=True,
        can_publish_data=True,
        agent=True,
    )


_KINDS: dict[ParticipantType, api.AccessToken.ParticipantKind] = {
    "user": "standard",
    "observer": "standard",
    "agent": "agent",
}


@dataclass(frozen=True)
class IssuedToken:
    """A signed token and when it stops being accepted."""

    jwt: str
    expires_at: datetime


def mint_token(
    *,
    api_key: str,
    api_secret: str,
    room: str,
    identity: str,
    participant_type: ParticipantType,
    ttl: timedelta,
    attributes: dict[str, str] | None = None,
) -> IssuedToken:
    """Sign a token that admits `identity` to `room` only, for `ttl`.

    `attributes` are set on the participant when it joins (everyone in the room and
    the SFU's webhooks see them).
    """
    issued_at = datetime.now(UTC).replace(microsecond=0)
    token = (
        api.AccessToken(api_key, api_secret)
        .with_identity(identity)
        .with_kind(_KINDS[participant_type])
        .with_ttl(ttl)
        .with_grants(_grants(participant_type, room))
    )
    if attributes:
        token = token.with_attributes(attributes)
    jwt = token.to_jwt()
    return IssuedToken(jwt=jwt, expires_at=issued_at + ttl)
