"""`/agents/control`: the websocket dispatched bots report on (SESSION_BACKEND=dispatch)."""

from fastapi import APIRouter, Query, WebSocket

router = APIRouter(tags=["agents"])


@router.websocket("/agents/control")
async def control(
    socket: WebSocket,
    token: str = Query(max_length=64),
    worker_id: str | None = Query(default=None, max_length=64),
    pid: int | None = Query(default=None, ge=1),
) -> None:
    """A bot's control channel, authenticated by the token in its dispatch's metadata."""
    backend = getattr(socket.app.state, "dispatch", None)
    if backend is None:
        await socket.close(code=1008)
        return
    await backend.attach(socket, token, worker_id, pid)
