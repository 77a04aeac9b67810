"""Counts every answer to `POST /connect` by status, whichever layer gave it."""

from prometheus_client import Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONNECT_PATH = "/connect"


class ConnectOutcomes:
    """ASGI middleware, outermost, so 413s and 429s count as well as the route's answers."""

    def __init__(self, app: ASGIApp, counter: Counter) -> None:
        self._app = app
        self._counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, noting the status it was answered with."""
        if scope["type"] != "http" or scope["path"] != CONNECT_PATH:
            await self._app(scope, receive, send)
            return
        status = 500  # what the server sends when the app fails before answering

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, noting_status)
        finally:
            self._counter.labels(status=str(status)).inc()
