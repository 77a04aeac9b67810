"""Knobs that make a stand-in misbehave the way real engines do, and a log of requests."""

import asyncio
import weakref
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

# Set on each request by `connections`: whether it is the first on its connection.
NEW_CONNECTION = web.RequestKey("new_connection", bool)

# Builds the error answer for a scripted status: (status, extra headers) -> response.
ErrorAnswer = Callable[[int, dict[str, str]], web.Response]


def scripted_error(status: int, headers: dict[str, str]) -> web.Response:
    """The JSON error answer the speech stand-ins give for a scripted status."""
    body = {"error": {"message": f"scripted {status}"}}
    return web.json_response(body, status=status, headers=headers)


@dataclass
class FaultPlan:
    """How a stand-in answers; tests change it between and during requests.

    Parameters:
        latency_s: Delay before the response starts (headers, or the first event).
        first_byte_delay_s: Delay between the response headers and its first body byte.
        chunk_delay_s: Delay between streamed chunks (deltas, tokens, audio).
        statuses: Status codes to answer with, one per request, before answering
            normally again, e.g. ``[429, 429]``.
        retry_after: Value of the Retry-After header sent with those statuses.
        hang: Accept requests and never answer them.
        drop_mid_stream: Close the connection after the first streamed chunk.
        garbage: Answer with a body that is not the protocol.
        connect_delay_s: Extra delay before the first request on a new connection is
            handled: the TCP and TLS round trips a remote engine's handshake takes.
        close_kept_alive: Close this many kept-alive connections, unanswered, as their
            next request arrives: what a client sees when its request crosses the
            server closing the connection as idle.
    """

    latency_s: float = 0.0
    first_byte_delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    statuses: list[int] = field(default_factory=list)
    retry_after: str | None = None
    hang: bool = False
    drop_mid_stream: bool = False
    garbage: bool = False
    connect_delay_s: float = 0.0
    close_kept_alive: int = 0

    def next_status(self) -> int | None:
        """The scripted status for this request, if any remain."""
        return self.statuses.pop(0) if self.statuses else None

    async def hang_forever(self) -> None:
        """Wait until the server shuts the handler down."""
        await asyncio.Event().wait()

    async def early_answer(
        self, *, garbage: web.Response, error: ErrorAnswer = scripted_error
    ) -> web.Response | None:
        """Misbehave before a response starts: wait, hang, fail or answer garbage.

        Args:
            garbage: What this protocol's garbage answer looks like.
            error: Builds the answer for a scripted status.

        Returns:
            The answer to send instead of the normal one, or None to answer normally.
        """
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if self.hang:
            await self.hang_forever()
        status = self.next_status()
        if status is not None:
            return error(status, {"Retry-After": self.retry_after} if self.retry_after else {})
        if self.garbage:
            return garbage
        return None

    async def start_stream(
        self, request: web.Request, response: web.StreamResponse, head: bytes = b""
    ) -> None:
        """Send the headers, wait out the first-byte delay, then send the fixed `head`."""
        await response.prepare(request)
        if self.first_byte_delay_s:
            await asyncio.sleep(self.first_byte_delay_s)
        if head:
            await response.write(head)

    async def stream(
        self, request: web.Request, response: web.StreamResponse, chunks: AsyncIterable[bytes]
    ) -> bool:
        """Write the streamed chunks with the planned delays and drop.

        Returns:
            Whether every chunk was written; False when the plan dropped the connection.
        """
        async for chunk in chunks:
            await response.write(chunk)
            if self.drop_mid_stream:
                if request.transport:
                    request.transport.close()
                return False
            if self.chunk_delay_s:
                await asyncio.sleep(self.chunk_delay_s)
        return True


@dataclass
class RequestLog:
    """What a stand-in received, for tests to assert on the wire."""

    requests: list[dict[str, Any]] = field(default_factory=list)

    def add(self, **entry: Any) -> None:
        """Record one request or message."""
        self.requests.append(entry)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        """The recorded entries of one kind."""
        return [r for r in self.requests if r.get("kind") == kind]


def connections(faults: FaultPlan) -> Middleware:
    """Marks each request that opened its connection, and charges it the handshake."""
    seen: weakref.WeakSet[object] = weakref.WeakSet()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[NEW_CONNECTION] = request.transport not in seen
        if request.transport:
            seen.add(request.transport)
        if request[NEW_CONNECTION] and faults.connect_delay_s:
            await asyncio.sleep(faults.connect_delay_s)
        if not request[NEW_CONNECTION] and faults.close_kept_alive and request.transport:
            faults.close_kept_alive -= 1
            request.transport.close()
            return web.Response(status=499)  # never reaches the client
        return await handler(request)

    return middleware


def connection_of(request: web.Request) -> dict[str, Any]:
    """Where a request came from, for the log.

    The client's port is shared by the requests on one kept-alive connection.
    """
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return {
        "client_port": peer[1] if peer else None,
        "new_connection": request.get(NEW_CONNECTION, True),
    }


def bearer_ok(authorization: str | None, api_key: str | None) -> bool:
    """Whether a request's Authorization header satisfies the configured key."""
    return api_key is None or authorization == f"Bearer {api_key}"
