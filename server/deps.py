"""Dependencies the routes declare: settings, sessions, who is calling, rate limits."""

import ipaddress
import secrets
from typing import Annotated

from fastapi import Depends, Request

from bot.settings import Settings
from server.errors import ApiError
from server.rate_limiter import RateLimiter
from server.session_manager import SessionManager

_PROXY_HEADERS = (b"forwarded", b"x-forwarded-for", b"x-real-ip")


def get_settings(request: Request) -> Settings:
    """The server's settings."""
    return request.app.state.settings


def get_sessions(request: Request) -> SessionManager:
    """The one session manager."""
    return request.app.state.sessions


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionsDep = Annotated[SessionManager, Depends(get_sessions)]


def _bearer(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


def _is_admin(request: Request, settings: Settings) -> bool:
    presented = _bearer(request)
    return (
        settings.admin_token is not None
        and presented is not None
        and secrets.compare_digest(
            presented.encode(), settings.admin_token.get_secret_value().encode()
        )
    )


def _from_loopback(request: Request) -> bool:
    """A direct local call; anything relayed by a proxy is not, wherever the proxy runs."""
    if request.client is None or any(k in _PROXY_HEADERS for k, _ in request.headers.raw):
        return False
    try:
        return ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:
        return False


def caller_is_trusted(request: Request, settings: SettingsDep) -> bool:
    """The admin bearer, or, while ADMIN_TOKEN is unset, a direct loopback call."""
    if settings.admin_token is None:
        return _from_loopback(request)
    return _is_admin(request, settings)


TrustedCallerDep = Annotated[bool, Depends(caller_is_trusted)]


def require_admin(request: Request, settings: SettingsDep) -> None:
    """Operator endpoints: only with `Authorization: Bearer ADMIN_TOKEN`."""
    if settings.admin_token is None:
        raise ApiError(403, "admin_disabled", "operator endpoints are off: ADMIN_TOKEN is not set")
    if not _is_admin(request, settings):
        raise ApiError(
            401,
            "unauthorized",
            "send Authorization: Bearer <ADMIN_TOKEN>",
            headers={"WWW-Authenticate": "Bearer"},
        )


AdminDep = Depends(require_admin)


def require_metrics_reader(request: Request, settings: SettingsDep) -> None:
    """`/metrics`: a direct loopback call (a Prometheus beside the server) or the admin bearer."""
    if _from_loopback(request) or _is_admin(request, settings):
        return
    if settings.admin_token is None:
        raise ApiError(
            403, "admin_disabled", "metrics are served to loopback only while ADMIN_TOKEN is unset"
        )
    raise ApiError(
        401,
        "unauthorized",
        "send Authorization: Bearer <ADMIN_TOKEN>",
        headers={"WWW-Authenticate": "Bearer"},
    )


MetricsReaderDep = Depends(require_metrics_reader)


def rate_limit(request: Request) -> None:
    """At most RATE_LIMIT_PER_MINUTE calls a minute from one client address."""
    limiter: RateLimiter = request.app.state.rate_limiter
    client = request.client.host if request.client else "unknown"
    wait = limiter.retry_after(client)
    if wait is not None:
        request.app.state.metrics.rate_limited.labels(endpoint=_route_path(request)).inc()
        seconds = max(1, round(wait + 0.5))
        raise ApiError(
            429,
            "rate_limited",
            f"too many requests; try again in {seconds}s",
            headers={"Retry-After": str(seconds)},
        )


RateLimitDep = Depends(rate_limit)


def _route_path(request: Request) -> str:
    """The matched route's template (never the raw path a client chose)."""
    route = request.scope.get("route")
    return getattr(route, "path", "unknown")
