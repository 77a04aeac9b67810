"""Prometheus counters for engine failures and retries, labelled by engine and kind only.

The labels are closed vocabularies: an engine (`stt`, `llm`, `tts`) and a kind of
failure (`timeout`, `status`, `connection`, `other`), never a message, room or
identity. In a bot started by the session server the counts land in the server's
multiprocess directory and appear on its `/metrics`; in any other process they stay in
memory.
"""

from typing import Literal

from pipecat.utils.errors import ErrorCategory, extract_http_status_code
from prometheus_client import Counter

Engine = Literal["stt", "llm", "tts"]
FailureKind = Literal["timeout", "status", "connection", "other"]

ENGINE_ERRORS = Counter(
    "voice_agent_engine_errors_total",
    "Engine failures reported to the pipeline (a turn lost its transcript, reply or audio)",
    ["engine", "kind"],
)
ENGINE_RETRIES = Counter(
    "voice_agent_engine_retries_total",
    "Engine requests retried (or connections re-established) after a failure",
    ["engine", "kind"],
)


def failure_kind(error: BaseException | None, category: ErrorCategory | None = None) -> FailureKind:
    """What kind of failure an exception (or, without one, an error category) stands for."""
    for cause in _chain(error):
        # By class name too: the HTTP clients' own timeouts and connection errors (httpx,
        # openai, aiohttp) do not all derive from the built-in ones.
        names = " ".join(cls.__name__ for cls in type(cause).__mro__)
        if isinstance(cause, TimeoutError) or "Timeout" in names:
            return "timeout"
        if extract_http_status_code(cause) is not None:
            return "status"
        if isinstance(cause, OSError) or "Connection" in names:
            return "connection"
    if category is ErrorCategory.CONNECTIVITY:
        return "connection"
    if category in (ErrorCategory.RATE_LIMIT, ErrorCategory.SERVER):
        return "status"
    return "other"


def _chain(error: BaseException | None) -> list[BaseException]:
    """The exception and what caused it, outermost first."""
    chain: list[BaseException] = []
    while error is not None and error not in chain:
        chain.append(error)
        error = error.__cause__ or error.__context__
    return chain


def count_retry(engine: Engine, kind: FailureKind) -> None:
    """Note one retry (a repeated request or a reconnection) of `engine`."""
    ENGINE_RETRIES.labels(engine=engine, kind=kind).inc()
