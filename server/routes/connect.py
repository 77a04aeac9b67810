"""`POST /connect`: start a conversation, or rejoin one after a page reload."""

from fastapi import APIRouter
from opentelemetry import trace

from bot.tracing import trace_context
from server.deps import RateLimitDep, SessionsDep, SettingsDep
from server.errors import ApiError
from server.identities import ensure_not_bot_identity, new_identity, new_room_name
from server.models import ConnectRequest, ConnectResponse, ErrorBody
from server.session_manager import (
    CAPACITY_RETRY_AFTER_S,
    AtCapacity,
    BotStartFailed,
    MachineBusy,
    RoomBusy,
    ShuttingDown,
)
from server.token_issuer import issue_token

router = APIRouter(tags=["sessions"])

_RETRY = {"Retry-After": str(CAPACITY_RETRY_AFTER_S)}


@router.post(
    "/connect",
    dependencies=[RateLimitDep],
    responses={
        409: {"model": ErrorBody},
        422: {"model": ErrorBody},
        429: {"model": ErrorBody},
        503: {"model": ErrorBody},
    },
)
async def connect(
    settings: SettingsDep, sessions: SessionsDep, body: ConnectRequest | None = None
) -> ConnectResponse:
    """Make sure one bot serves the room and hand back what the client joins it with.

    Answers at once: the bot joins the room while the client does.
    """
    room = (body and body.room) or new_room_name()
    identity = (body and body.identity) or new_identity()
    ensure_not_bot_identity(identity, settings.bot_identity)
    try:
        # The bot's conversation span becomes a child of this request's span.
        session = await sessions.open(room, identity, trace_context=trace_context())
    except RoomBusy:
        raise ApiError(
            409,
            "room_busy",
            f"room {room!r} already has a conversation with someone else; pick another room",
        ) from None
    except AtCapacity:
        raise ApiError(
            503,
            "at_capacity",
            f"all voice agents are busy ({settings.max_concurrent_sessions} of "
            f"{settings.max_concurrent_sessions} in use); try again in {CAPACITY_RETRY_AFTER_S}s",
            headers=_RETRY,
        ) from None
    except MachineBusy:
        raise ApiError(
            503,
            "machine_busy",
            f"all voice agents are busy (their machine is fully loaded); try again in "
            f"{CAPACITY_RETRY_AFTER_S}s",
            headers=_RETRY,
        ) from None
    except ShuttingDown:
        raise ApiError(
            503, "shutting_down", "the server is restarting; try again shortly", _RETRY
        ) from None
    except BotStartFailed:
        raise ApiError(
            503, "bot_start_failed", "could not start a voice agent; try again shortly", _RETRY
        ) from None
    trace.get_current_span().set_attribute("session.id", session.session_id)
    token = issue_token(settings, room=room, identity=identity, participant_type="user")
    return ConnectResponse(
        url=settings.client_livekit_url,
        room=room,
        token=token.jwt,
        identity=identity,
        session_id=session.session_id,
    )
