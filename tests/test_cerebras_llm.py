import time
from typing import Any

import pytest
from pipecat.frames.frames import (
    ErrorFrame,
    InterruptionFrame,
    LLMContextFrame,
    LLMTextFrame,
    UserStartedSpeakingFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.tests.utils import SleepFrame, run_test

from services.cerebras_llm import CerebrasPolicyLLMService
from tests.conftest import SECRETS

pytestmark = pytest.mark.unit


def llm(
    engines, timeout_s: float = 2.0, model: str = "gpt-oss-120b", **kwargs: Any
) -> CerebrasPolicyLLMService:
    return CerebrasPolicyLLMService(
        api_key=SECRETS["cerebras_api_key"],
        base_url=f"{engines.chat.url}/v1",
        timeout_s=timeout_s,
        settings=CerebrasPolicyLLMService.Settings(model=model, system_instruction="Be brief."),
        **kwargs,
    )


def ask(question: str) -> LLMContextFrame:
    return LLMContextFrame(LLMContext(messages=[{"role": "user", "content": question}]))


def reply_of(frames) -> str:
    return "".join(f.text for f in frames if isinstance(f, LLMTextFrame))


def errors(frames) -> list[str]:
    return [f.error for f in frames if isinstance(f, ErrorFrame)]


async def test_streams_the_reply_and_asks_gpt_oss_to_reason_briefly(engines):
    engines.replies[:] = ["Sunny and warm."]
    down, up = await run_test(llm(engines), frames_to_send=[ask("Weather?")])
    assert reply_of(down) == "Sunny and warm."
    assert not errors(up)
    (request,) = engines.chat.log.of_kind("chat")
    assert request["body"]["reasoning_effort"] == "low"
    assert request["body"]["stream"] is True
    assert request["headers"]["Authorization"] == f"Bearer {SECRETS['cerebras_api_key']}"
    assert request["body"]["messages"][0] == {"role": "system", "content": "Be brief."}


async def test_a_question_an_interruption_overtook_is_not_answered(engines):
    """On a busy loop the user's next turn can overtake the last turn's context."""
    engines.replies[:] = ["The real answer."]
    overtaken = ask("What is")
    down, _ = await run_test(
        llm(engines),
        frames_to_send=[InterruptionFrame(), overtaken, SleepFrame(0.1), ask("What is the time")],
    )
    assert reply_of(down) == "The real answer."
    assert [r["body"]["messages"][-1]["content"] for r in engines.chat.log.of_kind("chat")] == [
        "What is the time"
    ]


async def test_other_models_are_not_sent_reasoning_effort(engines):
    await run_test(llm(engines, model="llama3.1-8b"), frames_to_send=[ask("Hi")])
    assert "reasoning_effort" not in engines.chat.log.of_kind("chat")[0]["body"]


async def test_rate_limits_are_retried_honouring_retry_after(engines):
    engines.replies[:] = ["Here you go."]
    engines.chat.faults.statuses = [429, 429]
    engines.chat.faults.retry_after = "0.6"
    down, up = await run_test(llm(engines), frames_to_send=[ask("Hi")])
    assert reply_of(down) == "Here you go."
    assert not errors(up)
    times = [r["at"] for r in engines.chat.log.of_kind("chat")]
    assert len(times) == 3
    assert all(later - earlier >= 0.55 for earlier, later in zip(times, times[1:], strict=False))


async def test_rate_limits_give_up_after_three_retries_and_the_next_turn_works(engines):
    engines.replies[:] = ["Back again."]
    engines.chat.faults.statuses = [429, 429, 429, 429]
    engines.chat.faults.retry_after = "0.05"
    down, up = await run_test(
        llm(engines), frames_to_send=[ask("Hi"), SleepFrame(0.1), ask("Hi again")]
    )
    assert len(engines.chat.log.of_kind("chat")) == 5  # 1 + 3 retries, then the next turn
    assert len(errors(up)) == 1 and "429" in errors(up)[0]
    assert reply_of(down) == "Back again."


async def test_server_errors_get_one_backoff_then_fail_fast(engines):
    engines.chat.faults.statuses = [503, 503, 503]
    started = time.monotonic()
    _, up = await run_test(llm(engines), frames_to_send=[ask("Hi")])
    assert len(engines.chat.log.of_kind("chat")) == 2
    assert len(errors(up)) == 1 and "503" in errors(up)[0]
    assert time.monotonic() - started < 3


async def test_a_server_error_once_is_absorbed_by_the_retry(engines):
    engines.replies[:] = ["Recovered."]
    engines.chat.faults.statuses = [500]
    down, up = await run_test(llm(engines), frames_to_send=[ask("Hi")])
    assert reply_of(down) == "Recovered."
    assert not errors(up)


@pytest.mark.parametrize("status", [400, 404, 408, 409, 422])
async def test_other_client_errors_fail_at_once_and_the_next_turn_works(engines, status):
    engines.replies[:] = ["Fine now."]
    engines.chat.faults.statuses = [status]
    down, up = await run_test(llm(engines), frames_to_send=[ask("Hi"), SleepFrame(0.1), ask("Hi")])
    assert len(engines.chat.log.of_kind("chat")) == 2
    assert len(errors(up)) == 1 and str(status) in errors(up)[0]
    assert reply_of(down) == "Fine now."


async def test_a_refused_key_is_reported(engines):
    engines.chat.faults.statuses = [401]
    _, up = await run_test(llm(engines), frames_to_send=[ask("Hi")])
    assert len(engines.chat.log.of_kind("chat")) == 1
    assert len(errors(up)) == 1 and "401" in errors(up)[0]


async def test_a_hung_server_times_out_after_one_retry_and_the_next_turn_works(engines):
    engines.replies[:] = ["Awake."]
    engines.chat.faults.hang = True

    started = time.monotonic()
    _, up = await run_test(llm(engines, timeout_s=0.3), frames_to_send=[ask("Hi")])
    elapsed = time.monotonic() - started
    assert len(engines.chat.log.of_kind("chat")) == 2
    assert len(errors(up)) == 1 and "timed out" in errors(up)[0].lower()
    assert elapsed < 2.5

    engines.chat.faults.hang = False
    down, up = await run_test(llm(engines, timeout_s=0.3), frames_to_send=[ask("Hi")])
    assert reply_of(down) == "Awake."


async def test_a_stream_that_stalls_midway_times_out(engines):
    engines.replies[:] = ["one two three four"]
    engines.chat.faults.chunk_delay_s = 1.0
    down, up = await run_test(llm(engines, timeout_s=0.3), frames_to_send=[ask("Hi")])
    assert reply_of(down) == "one"
    assert len(errors(up)) == 1 and "timed out" in errors(up)[0].lower()


async def test_a_garbage_stream_is_an_error_not_a_crash(engines):
    engines.chat.faults.garbage = True
    _, up = await run_test(llm(engines), frames_to_send=[ask("Hi")])
    assert len(errors(up)) == 1


async def test_a_stream_cut_midway_is_reported_and_the_next_turn_works(engines):
    engines.replies[:] = ["one two three four", "Whole again."]
    engines.chat.faults.drop_mid_stream = True
    _, up = await run_test(llm(engines), frames_to_send=[ask("Hi")])
    assert len(errors(up)) == 1
    engines.chat.faults.drop_mid_stream = False
    down, up = await run_test(llm(engines), frames_to_send=[ask("Hi again")])
    assert reply_of(down) == "Whole again." and not errors(up)


async def test_the_connection_is_opened_before_the_first_question(engines):
    engines.replies[:] = ["Ready."]
    await run_test(llm(engines), frames_to_send=[SleepFrame(0.3)])
    assert len(engines.chat.log.of_kind("models")) == 1
    assert not engines.chat.log.of_kind("chat"), "no completion is spent on it"


async def test_the_connection_stays_open_for_a_question_after_a_pause(engines):
    """The client's default closed an idle connection after 5 s, before most questions."""
    engines.replies[:] = ["Still here."]
    frames = [ask("Hi"), SleepFrame(6), ask("Still there?")]
    await run_test(llm(engines), frames_to_send=frames)
    *earlier, after_pause = engines.chat.log.of_kind("models") + engines.chat.log.of_kind("chat")
    assert after_pause["body"]["messages"][-1]["content"] == "Still there?"
    assert after_pause["client_port"] in {r["client_port"] for r in earlier}, "a new connection"


async def test_a_connection_idle_too_long_is_opened_again_while_the_user_speaks(
    engines, monkeypatch
):
    monkeypatch.setattr("services.cerebras_llm.KEEPALIVE_S", 0.3)
    # Generous sleeps: a client's first request alone can take 0.5 s on a busy machine.
    frames = [SleepFrame(2), UserStartedSpeakingFrame(), SleepFrame(1)]
    await run_test(llm(engines), frames_to_send=frames)
    assert len(engines.chat.log.of_kind("models")) == 2
    assert not engines.chat.log.of_kind("chat")
