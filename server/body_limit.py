"""Refuse request bodies over a size limit before anything parses them."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import ApiError


class BodySizeLimit:
    """ASGI middleware: a body over `max_bytes` gets 413, declared or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self._app = app
        self._max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Buffer at most `max_bytes` of the body, then hand the app a replay of it."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self._max_bytes):
            await self._refuse(scope, receive, send)
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self._max_bytes:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self._app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        from starlette.responses import JSONResponse

        error = ApiError(413, "body_too_large", f"request body over {self._max_bytes} bytes")
        response = JSONResponse({"detail": error.detail, "reason": error.reason}, 413)
        await response(scope, receive, send)
