"""How long connections to the engines stay open between turns.

A turn's requests would otherwise open new connections (a TLS handshake's round trips)
while the user waits: the HTTP clients' defaults close idle ones after 5 s (httpx) or
15 s (aiohttp), shorter than people often pause. A connection the server closed
sooner is dropped, not reused.
"""

import aiohttp

KEEPALIVE_S = 120.0


def engine_http_session() -> aiohttp.ClientSession:
    """An HTTP session for the STT and TTS that keeps idle connections `KEEPALIVE_S`."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_S))
