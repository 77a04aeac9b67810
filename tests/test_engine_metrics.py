"""Engine failures and retries counted for Prometheus, by engine and kind, where they happen.

Each service runs against its stand-in with a fault; the error observer watches the
frames as it does in the bot. The counters live in this process (no multiprocess
directory), so each test reads how much they moved.
"""

import asyncio
from collections.abc import Iterator

import aiohttp
import pytest
from openai import APIConnectionError, APITimeoutError
from pipecat.frames.frames import TTSSpeakFrame
from pipecat.tests.utils import SleepFrame, run_test
from prometheus_client import REGISTRY

from processors.engine_error_observer import EngineErrorObserver
from services.chatterbox_tts import ChatterboxStatusError
from services.engine_metrics import failure_kind
from tests.test_cerebras_llm import ask, llm
from tests.test_chatterbox_tts import tts
from tests.test_voxtral_stt import segmented, utterance, when

pytestmark = pytest.mark.unit


class Counts:
    """How far the engine counters moved since the test began."""

    def __init__(self) -> None:
        self._start = self._now()

    @staticmethod
    def _now() -> dict[tuple[str, ...], float]:
        values = {}
        for family in REGISTRY.collect():
            if family.name in ("voice_agent_engine_errors", "voice_agent_engine_retries"):
                for sample in family.samples:
                    if sample.name.endswith("_total"):
                        key = (family.name.rsplit("_", 1)[1], *sample.labels.values())
                        values[key] = sample.value
        return values

    def moved(self) -> dict[tuple[str, ...], float]:
        """{(errors|retries, engine, kind): increase} for every counter that moved."""
        now = self._now()
        return {k: v - self._start.get(k, 0) for k, v in now.items() if v != self._start.get(k)}


@pytest.fixture
def counts() -> Iterator[Counts]:
    yield Counts()


async def test_llm_rate_limits_count_three_status_retries_then_one_error(engines, counts):
    engines.chat.faults.statuses = [429, 429, 429, 429]
    engines.chat.faults.retry_after = "0.05"
    await run_test(llm(engines), frames_to_send=[ask("Hi")], observers=[EngineErrorObserver()])
    assert counts.moved() == {("retries", "llm", "status"): 3, ("errors", "llm", "status"): 1}


async def test_llm_hang_counts_one_timeout_retry_then_one_timeout_error(engines, counts):
    engines.chat.faults.hang = True
    await run_test(
        llm(engines, timeout_s=0.3), frames_to_send=[ask("Hi")], observers=[EngineErrorObserver()]
    )
    assert counts.moved() == {("retries", "llm", "timeout"): 1, ("errors", "llm", "timeout"): 1}


@pytest.mark.parametrize(
    ("fault", "kind"), [({"hang": True}, "timeout"), ({"statuses": [503]}, "status")]
)
async def test_tts_failures_are_counted_by_kind(engines, http, counts, fault, kind):
    for name, value in fault.items():
        setattr(engines.chatterbox.faults, name, value)
    await run_test(
        tts(engines, http, timeout_s=0.3),
        frames_to_send=[TTSSpeakFrame("Hello there"), SleepFrame(0.5)],
        observers=[EngineErrorObserver()],
    )
    assert counts.moved() == {("errors", "tts", kind): 1}


async def test_stt_timeout_counts_its_retry_and_its_error(engines, http, counts):
    engines.voxtral.faults.hang = True

    async def recover() -> None:
        await when(lambda: len(engines.voxtral.log.of_kind("transcription")) >= 2)
        await asyncio.sleep(0.5)
        engines.voxtral.faults.hang = False

    recovering = asyncio.create_task(recover())
    await run_test(
        segmented(engines, http, timeout_s=0.3),
        frames_to_send=utterance(0.3, settle=1.2),
        observers=[EngineErrorObserver()],
    )
    await recovering
    assert counts.moved() == {("retries", "stt", "timeout"): 1, ("errors", "stt", "timeout"): 1}


def test_failure_kinds_are_told_from_the_exception_and_its_causes():
    request = None
    assert failure_kind(APITimeoutError(request=request)) == "timeout"  # type: ignore[arg-type]
    assert failure_kind(APIConnectionError(request=request)) == "connection"  # type: ignore[arg-type]
    assert failure_kind(ChatterboxStatusError(500, "boom")) == "status"
    assert failure_kind(aiohttp.ServerDisconnectedError()) == "connection"
    assert failure_kind(ValueError("garbage")) == "other"
    assert failure_kind(None) == "other"
    try:
        try:
            raise TimeoutError
        except TimeoutError as e:
            raise RuntimeError("wrapped") from e
    except RuntimeError as wrapped:
        assert failure_kind(wrapped) == "timeout"
