"""`POST /token`: a LiveKit token for one room."""

from fastapi import APIRouter

from server.deps import RateLimitDep, SessionsDep, SettingsDep, TrustedCallerDep
from server.errors import ApiError
from server.identities import ensure_not_bot_identity, new_identity
from server.models import ErrorBody, TokenRequest, TokenResponse
from server.token_issuer import issue_token

router = APIRouter(tags=["tokens"])


@router.post(
    "/token",
    dependencies=[RateLimitDep],
    responses={
        403: {"model": ErrorBody},
        409: {"model": ErrorBody},
        422: {"model": ErrorBody},
        429: {"model": ErrorBody},
    },
)
async def create_token(
    body: TokenRequest, settings: SettingsDep, sessions: SessionsDep, trusted: TrustedCallerDep
) -> TokenResponse:
    """Mint a token for `room` as a user (default), a listen-only observer, or the agent.

    Agent tokens go to trusted callers only. A room whose conversation belongs to
    someone else is refused to untrusted callers, as `/connect` refuses it.
    """
    identity = body.identity or new_identity()
    if body.participant_type == "agent":
        if not trusted:
            raise ApiError(
                403,
                "forbidden",
                "agent tokens are issued only with Authorization: Bearer <ADMIN_TOKEN>",
            )
    else:
        ensure_not_bot_identity(identity, settings.bot_identity)
        session = sessions.get(body.room)
        if session is not None and session.identity != identity and not trusted:
            raise ApiError(409, "room_busy", f"room {body.room!r} is in use by someone else")
    token = issue_token(
        settings, room=body.room, identity=identity, participant_type=body.participant_type
    )
    return TokenResponse(
        token=token.jwt,
        url=settings.client_livekit_url,
        room=body.room,
        identity=identity,
        expires_at=token.expires_at,
    )
