"""Request and response bodies of the session server's API."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from bot.names import NAME_PATTERN, NAME_RULE
from bot.tokens import ParticipantType

Name = Annotated[
    str,
    StringConstraints(pattern=NAME_PATTERN),
    Field(description=NAME_RULE, examples=["kitchen-42"]),
]


class TokenRequest(BaseModel):
    """Who wants to join which room, and as what."""

    room: Name
    identity: Name | None = Field(default=None, description="Generated when omitted")
    participant_type: ParticipantType = "user"


class TokenResponse(BaseModel):
    """A token for one room, and where to use it."""

    token: str
    url: str
    room: str
    identity: str
    expires_at: datetime


class ConnectRequest(BaseModel):
    """Start (or rejoin) a conversation; both fields are generated when omitted."""

    room: Name | None = None
    identity: Name | None = None


class ConnectResponse(BaseModel):
    """What the client's LiveKit transport needs to join the bot's room."""

    url: str
    room: str
    token: str
    identity: str
    session_id: str


class SessionInfo(BaseModel):
    """One running conversation, as operators see it."""

    session_id: str
    room: str
    identity: str
    pid: int | None = Field(description="the bot's process id, on its worker host if dispatched")
    worker_id: str | None = Field(
        default=None, description="the LiveKit worker serving the room (SESSION_BACKEND=dispatch)"
    )
    state: Literal["starting", "running"]
    started_at: datetime
    uptime_s: float


class Health(BaseModel):
    """Liveness."""

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """Whether a new session can start now."""

    ready: bool
    sessions: int
    max_sessions: int
    # The CPUs' busy share over CPU_BUSY_WINDOW_S, when MAX_CPU_BUSY is set.
    cpu_busy: float | None = None


class ErrorBody(BaseModel):
    """Every error the API returns: a sentence to show and a code to branch on."""

    detail: str
    reason: str
