"""Operator endpoints: list and end sessions. Bearer ADMIN_TOKEN only."""

import time

from fastapi import APIRouter, Path, Response

from bot.names import NAME_PATTERN
from server.deps import AdminDep, SessionsDep
from server.errors import ApiError
from server.models import ErrorBody, SessionInfo

router = APIRouter(
    prefix="/sessions",
    tags=["operators"],
    dependencies=[AdminDep],
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}},
)


@router.get("")
async def list_sessions(sessions: SessionsDep) -> list[SessionInfo]:
    """Every live session, oldest first."""
    now = time.monotonic()
    return [
        SessionInfo(
            session_id=s.session_id,
            room=s.room,
            identity=s.identity,
            pid=s.bot.pid if s.bot else None,
            state=s.state,
            started_at=s.started_at,
            uptime_s=round(now - s.started_monotonic, 3),
        )
        for s in sessions.sessions()
    ]


@router.delete("/{room}", status_code=204, responses={404: {"model": ErrorBody}})
async def end_session(sessions: SessionsDep, room: str = Path(pattern=NAME_PATTERN)) -> Response:
    """Stop the room's bot (SIGTERM, then SIGKILL after BOT_STOP_GRACE_S) and free its slot."""
    if not await sessions.end(room):
        raise ApiError(404, "not_found", f"no session in room {room!r}")
    return Response(status_code=204)
