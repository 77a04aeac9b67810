"""Errors as JSON a client can show: `{"detail": sentence, "reason": code}`, never a traceback."""

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from loguru import logger
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.names import NAME_PATTERN, NAME_RULE


class ApiError(Exception):
    """A refusal with a status, a reason code and a message for people."""

    def __init__(
        self, status: int, reason: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail
        self.headers = headers


def _field_problem(error: dict) -> tuple[str, str]:
    """The field a validation error is about and a plain description of it."""
    location = [str(part) for part in error.get("loc", ()) if part != "body"]
    field = ".".join(location) or "body"
    if error.get("type") == "string_pattern_mismatch" and error.get("ctx", {}).get("pattern") == (
        NAME_PATTERN
    ):
        return field, f"must be {NAME_RULE}"
    if error.get("type") == "missing" and field == "body":
        return field, "a JSON body is required"
    return field, str(error.get("msg", "is invalid"))


def install_error_handlers(app: FastAPI) -> None:
    """Render every failure as an `ErrorBody`."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, e: ApiError) -> JSONResponse:
        return JSONResponse(
            {"detail": e.detail, "reason": e.reason}, status_code=e.status, headers=e.headers
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, e: RequestValidationError) -> JSONResponse:
        problems = [_field_problem(error) for error in e.errors()]
        return JSONResponse(
            {
                "detail": "; ".join(f"{field}: {message}" for field, message in problems),
                "reason": "invalid_request",
                "fields": [field for field, _ in problems],
            },
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, e: StarletteHTTPException) -> JSONResponse:
        reason = "not_found" if e.status_code == 404 else "http_error"
        return JSONResponse(
            {"detail": str(e.detail), "reason": reason},
            status_code=e.status_code,
            headers=getattr(e, "headers", None),
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, e: Exception) -> JSONResponse:
        logger.opt(exception=e).error(f"Unhandled error on {request.method} {request.url.path}")
        return JSONResponse(
            {"detail": "internal error; the operators have the details", "reason": "internal"},
            status_code=500,
        )
