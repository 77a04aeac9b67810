"""Liveness and readiness, for load balancers and orchestrators."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from server.deps import SessionsDep, SettingsDep
from server.models import Health, Readiness
from server.session_manager import CAPACITY_RETRY_AFTER_S

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> Health:
    """The process is up and serving requests."""
    return Health()


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
async def ready(settings: SettingsDep, sessions: SessionsDep) -> JSONResponse:
    """200 while a new session could start now; 503 when full, too busy or shutting down."""
    busy = sessions.cpu_busy
    body = Readiness(
        ready=sessions.has_capacity,
        sessions=len(sessions.sessions()),
        max_sessions=settings.max_concurrent_sessions,
        cpu_busy=None if busy is None else round(busy, 3),
    )
    if body.ready:
        return JSONResponse(body.model_dump(exclude_none=True))
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=503,
        headers={"Retry-After": str(CAPACITY_RETRY_AFTER_S)},
    )
