"""Knobs that make a stand-in misbehave the way real engines do, and a log of requests."""

import asyncio
from dataclasses import dataclass, field
from typing import Any


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
    """

    latency_s: float = 0.0
    first_byte_delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    statuses: list[int] = field(default_factory=list)
    retry_after: str | None = None
    hang: bool = False
    drop_mid_stream: bool = False
    garbage: bool = False

    def next_status(self) -> int | None:
        """The scripted status for this request, if any remain."""
        return self.statuses.pop(0) if self.statuses else None

    async def hang_forever(self) -> None:
        """Wait until the server shuts the handler down."""
        await asyncio.Event().wait()


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


def bearer_ok(authorization: str | None, api_key: str | None) -> bool:
    """Whether a request's Authorization header satisfies the configured key."""
    return api_key is None or authorization == f"Bearer {api_key}"
