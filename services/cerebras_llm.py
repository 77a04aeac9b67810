"""Cerebras chat completions with the failure policy a live conversation needs.

Retries come from the OpenAI client the service is built on: its backoff is
exponential with jitter and honours Retry-After. What this module adds is which
failures deserve how many retries, because a person is waiting for the answer:

- 429: up to three retries, honouring Retry-After.
- 5xx: one retry after a backoff, then fail fast.
- any other 4xx: fail at once.
- no response within the timeout, or no connection: one retry, then fail.

A failed turn ends with a non-fatal error the client can show. Only credentials being
refused (401, 403) takes the service out of use; other failures leave it ready for the
next turn.

The session's first request would pay for opening the connection and the client's
first use (0.2-0.5 s here); a `GET /models` when the pipeline starts pays it before
anyone waits. The connection then stays open between turns (`services.keepalive`:
the client's default closed it before nearly every question), and once it has been
idle long enough for either side to have closed it, the user starting to speak, and
again stopping, opens it anew (`services.connection_warmer`).

A reply generated preemptively, before the user's turn has ended, streams on to the
TTS at once (`processors.preempted_reply_gate` holds its audio instead); when it is
withdrawn, the request is closed and an interruption tells everything downstream to
drop what it holds of it.

An interruption voids every question asked before it. Pipecat clears what a processor
has queued when one passes, but a system frame also jumps the frames still waiting in
the processor's input queue: on a busy loop the user's new turn could overtake the
previous turn's context, which was then answered after the interruption, and that stale
reply played before the real one.
"""

import functools
import ssl
import sys
from typing import Any

import httpx2
from loguru import logger
from openai import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncOpenAI,
    DefaultAsyncHttpxClient,
    Timeout,
)
from openai._httpx2 import timeout_exceptions
from pipecat.frames.frames import (
    CancelFrame,
    EagerEndOfTurnCancelFrame,
    EndFrame,
    Frame,
    InterruptionFrame,
    LLMContextFrame,
    StartFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.cerebras.llm import CerebrasLLMService, CerebrasLLMSettings
from pipecat.turns.speculation_gate import GatedFrame, SpeculationGate
from pipecat.utils.errors import ErrorCategory

from services.connection_warmer import ConnectionWarmer
from services.engine_metrics import count_retry, failure_kind
from services.interruption_fence import InterruptionFence
from services.keepalive import KEEPALIVE_S

RATE_LIMIT_RETRIES = 3
SERVER_ERROR_RETRIES = 1
TRANSPORT_RETRIES = 1
CONNECT_TIMEOUT_S = 3.0
RETRY_COUNT_HEADER = "x-stainless-retry-count"


def retries_allowed(status: int) -> int:
    """How many times a response with this status may be retried."""
    if status == 429:
        return RATE_LIMIT_RETRIES
    if status >= 500:
        return SERVER_ERROR_RETRIES
    return 0


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS context every LLM client in this process shares.

    Building one reads the CA store (~50 ms of CPU), which a client would otherwise do
    each time; the bot's fork server builds it once for all the bots it forks.
    """
    return httpx2.create_ssl_context()


class _PolicyAsyncOpenAI(AsyncOpenAI):
    """An OpenAI client whose retry decisions follow the policy above."""

    async def _sleep_for_retry(self, *, retries_taken: int, response: Any, **kwargs: Any) -> None:
        # Without a response the request timed out or never connected. The client
        # would retry that up to max_retries times; a person waits, so only once.
        # This runs inside the client's handler for that error, so it is at hand.
        error = sys.exc_info()[1]
        if response is None and retries_taken >= TRANSPORT_RETRIES and error is not None:
            try:
                request = error.request  # type: ignore[attr-defined]
            except (AttributeError, RuntimeError):
                request = None
            if isinstance(error, timeout_exceptions()):
                raise APITimeoutError(request=request) from error
            raise APIConnectionError(request=request) from error
        count_retry("llm", "status" if response is not None else failure_kind(error))
        await super()._sleep_for_retry(retries_taken=retries_taken, response=response, **kwargs)

    def _should_retry(self, response: Any) -> bool:
        retries_taken = int(response.request.headers.get(RETRY_COUNT_HEADER, "0"))
        if retries_taken >= retries_allowed(response.status_code):
            return False
        # The base class still vetoes a Retry-After beyond its two-minute ceiling.
        return super()._should_retry(response)


class _ForwardingSpeculationGate(SpeculationGate):
    """Tracks a speculative inference, so a withdrawal stops it, but holds nothing.

    The TTS starts on the reply's text at once; its audio is held after the TTS.
    """

    def _begin(self) -> list[GatedFrame]:
        return []


class CerebrasPolicyLLMService(CerebrasLLMService):
    """`CerebrasLLMService` with per-status retry budgets and a request timeout."""

    _settings: CerebrasLLMSettings

    def __init__(
        self, *, timeout_s: float, idle_close_s: float = KEEPALIVE_S, **kwargs: Any
    ) -> None:
        """Initialize the service.

        Args:
            timeout_s: Longest wait for the response to start, and between two chunks.
            idle_close_s: How long the server keeps an idle connection open; the client
                keeps one `KEEPALIVE_S` at most.
            **kwargs: Passed to `CerebrasLLMService` (api_key, base_url, settings...).
        """
        self._timeout_s = timeout_s
        super().__init__(**kwargs)
        self._speculation_gate = _ForwardingSpeculationGate(name=f"{self}::SpeculationGate")
        self._warmer = ConnectionWarmer(
            self._list_models, idle_close_s=min(idle_close_s, KEEPALIVE_S), name=str(self)
        )
        self._fence = InterruptionFence(kinds=(LLMContextFrame,))

    async def start(self, frame: StartFrame) -> None:
        """Start, and open the connection to the server in the background."""
        await super().start(frame)
        self._warmer.warm()

    async def stop(self, frame: EndFrame) -> None:
        """Stop, abandoning a warm-up still under way."""
        await self._warmer.close()
        await super().stop(frame)

    async def cancel(self, frame: CancelFrame) -> None:
        """Cancel, abandoning a warm-up still under way."""
        await self._warmer.close()
        await super().cancel(frame)

    async def _list_models(self) -> None:
        # Any answer warms the connection; a server without the route is fine.
        await self._client.models.list()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Skip a question an interruption overtook; stop a withdrawn preemptive reply."""
        if self._fence.overtaken(frame, direction):
            logger.debug(f"{self}: not answering a question an interruption overtook")
            return
        withdrawn = (
            isinstance(frame, EagerEndOfTurnCancelFrame) and self._speculation_gate.is_speculating
        )
        if isinstance(frame, (UserStartedSpeakingFrame, UserStoppedSpeakingFrame)):
            # Again as they stop: a server closing idle ones soon may have closed it.
            self._warmer.warm()
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame):
            self._warmer.used()
        if withdrawn:
            # The chunker drops its text, the TTS closes its request, the reply gate
            # drops the audio it held: as for an interruption, though nothing was heard.
            await self.push_frame(InterruptionFrame())

    def create_client(
        self,
        api_key=None,
        base_url=None,
        organization=None,
        project=None,
        default_headers=None,
        **kwargs,
    ):
        """Create the client with our retry policy and timeout."""
        return _PolicyAsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            organization=organization,
            project=project,
            default_headers=default_headers,
            max_retries=RATE_LIMIT_RETRIES,
            timeout=Timeout(self._timeout_s, connect=min(CONNECT_TIMEOUT_S, self._timeout_s)),
            http_client=DefaultAsyncHttpxClient(
                verify=tls_context(),
                limits=httpx2.Limits(keepalive_expiry=KEEPALIVE_S),
            ),
        )

    def build_chat_completion_params(self, params_from_context: Any) -> dict:
        """Ask gpt-oss models to reason briefly: a person is waiting."""
        params = super().build_chat_completion_params(params_from_context)
        if str(self._settings.model).startswith("gpt-oss"):
            params.setdefault("reasoning_effort", "low")
        return params

    def _classify_error(self, exception: Exception) -> ErrorCategory | None:
        """Keep the service usable after a failed turn unless credentials were refused."""
        if isinstance(exception, APIStatusError):
            if exception.status_code == 401:
                return ErrorCategory.AUTHENTICATION
            if exception.status_code == 403:
                return ErrorCategory.AUTHORIZATION
            if exception.status_code == 429:
                return ErrorCategory.RATE_LIMIT
            if exception.status_code >= 500:
                return ErrorCategory.SERVER
            # A request this turn got wrong says nothing about the next turn.
            return ErrorCategory.UNKNOWN
        return None
