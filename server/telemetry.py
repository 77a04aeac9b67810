"""What the session server traces: `POST /connect` alone, the root of a conversation's trace.

FastAPI traces requests itself once a tracer provider is installed (`bot/tracing.py`).
Health probes, tokens and operator calls would only add noise (and `/sessions/{room}`
a room name in the URL), so they are excluded; the request's own span is enough,
without FastAPI's per-dependency children, and FastAPI's logs, which quote validation
input, stay off. The span's attributes are redacted on export like the bot's.
"""

from collections.abc import MutableMapping
from typing import Any

from fastapi.telemetry import TelemetryConfig

CONNECT_PATH = "/connect"


def _not_connect(scope: MutableMapping[str, Any]) -> bool:
    return not (
        scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == CONNECT_PATH
    )


TELEMETRY: TelemetryConfig = {
    "tracing": True,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
    "auto_configure": False,
    "exclude": _not_connect,
}
