"""Engine connections a turn finds open, though the engines' servers close idle ones.

The stand-ins close a connection idle for their `IDLE_CLOSE_S` (uvicorn's 5 s for vLLM
and Chatterbox, shortened here) and log whether each request opened its connection:
the request that would wait for a remote engine's TCP and TLS handshakes.
"""

from typing import Any

import pytest
from pipecat.frames.frames import (
    ErrorFrame,
    InterruptionFrame,
    TTSSpeakFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.tests.utils import SleepFrame, run_test

from engines import tone
from processors.engine_error_observer import EngineErrorObserver
from services.chatterbox_tts import ChatterboxTTSService
from tests.test_cerebras_llm import ask, llm, reply_of
from tests.test_chatterbox_tts import TEXT, audio_of, tts
from tests.test_engine_metrics import Counts
from tests.test_voxtral_stt import segmented, transcripts, utterance

pytestmark = pytest.mark.unit
IDLE_CLOSE_S = 1.0
LONGER_THAN_IDLE_CLOSE = SleepFrame(1.6)


async def closing_idle_connections(engine: Any) -> None:
    await engine.stop()
    await engine.restart(idle_close_s=IDLE_CLOSE_S)


@pytest.mark.parametrize(("idle_close_s", "opened_ahead"), [(IDLE_CLOSE_S, True), (0, False)])
async def test_a_turns_first_sentence_finds_a_connection_opened_while_the_llm_thinks(
    engines, http, idle_close_s, opened_ahead
):
    await closing_idle_connections(engines.chatterbox)
    service: ChatterboxTTSService = tts(engines, http, idle_close_s=idle_close_s)
    frames = [
        TTSSpeakFrame("Hello."),
        LONGER_THAN_IDLE_CLOSE,  # the reply plays, the user answers: the server closes it
        UserStoppedSpeakingFrame(),
        SleepFrame(0.5),  # the STT's final transcript and the LLM's first tokens
        TTSSpeakFrame(TEXT),
    ]
    down, _ = await run_test(service, frames_to_send=frames)
    audio, rate = audio_of(down)
    assert tone.decode(audio, rate) == tone.code("Hello.") + tone.code(TEXT)
    first, second = engines.chatterbox.log.of_kind("speech")
    assert first["new_connection"]
    assert second["new_connection"] is not opened_ahead


async def test_after_a_barge_in_the_next_reply_finds_a_connection_opened_while_the_llm_thinks(
    engines, http
):
    """Interrupting a reply closes its request's connection, however recently it was used."""
    engines.chatterbox.backend.realtime_factor = 1.0
    frames = [
        TTSSpeakFrame("Hello."),
        SleepFrame(0.5),
        TTSSpeakFrame(" ".join(["lantern"] * 30)),
        SleepFrame(0.5),
        InterruptionFrame(),
        UserStoppedSpeakingFrame(),
        SleepFrame(0.5),
        TTSSpeakFrame(TEXT),
    ]
    await run_test(tts(engines, http), frames_to_send=frames)
    assert engines.chatterbox.log.of_kind("speech_cancelled"), "the interruption cut a request"
    after_barge_in = engines.chatterbox.log.of_kind("speech")[-1]
    assert after_barge_in["body"]["input"] == TEXT
    assert not after_barge_in["new_connection"]


async def test_a_sentence_sent_as_the_server_closes_its_connection_is_asked_again(engines, http):
    await run_test(tts(engines, http), frames_to_send=[TTSSpeakFrame("Hello."), SleepFrame(0.2)])
    engines.chatterbox.faults.close_kept_alive = 1
    counts = Counts()
    down, up = await run_test(
        tts(engines, http),
        frames_to_send=[TTSSpeakFrame(TEXT)],
        observers=[EngineErrorObserver()],
    )
    audio, rate = audio_of(down)
    assert tone.decode(audio, rate) == tone.code(TEXT)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert engines.chatterbox.faults.close_kept_alive == 0, "the request did cross a close"
    assert counts.moved() == {("retries", "tts", "connection"): 1}, "one retry, no error"


async def test_an_utterance_is_uploaded_on_a_connection_opened_as_the_user_began(engines, http):
    await closing_idle_connections(engines.voxtral)
    engines.transcripts[:] = ["good morning", "what time is it"]
    started, *speech = utterance(0.4)
    # The frames come at once; the user takes a while to say them.
    frames = [*utterance(0.4), LONGER_THAN_IDLE_CLOSE, started, SleepFrame(0.4), *speech]
    down, _ = await run_test(
        segmented(engines, http, idle_close_s=IDLE_CLOSE_S), frames_to_send=frames
    )
    assert transcripts(down) == ["good morning", "what time is it"]
    first, second = engines.voxtral.log.of_kind("transcription")
    assert first["new_connection"] and not second["new_connection"]


async def test_a_question_after_a_long_utterance_finds_a_connection_opened_as_the_user_stopped(
    engines,
):
    """A self-hosted LLM server under uvicorn closes idle connections after 5 s too."""
    await closing_idle_connections(engines.chat)
    engines.replies[:] = ["Hi.", "Still here."]
    frames = [
        ask("Hi"),
        LONGER_THAN_IDLE_CLOSE,
        UserStartedSpeakingFrame(),
        LONGER_THAN_IDLE_CLOSE,  # a long question: the connection opened now closes again
        UserStoppedSpeakingFrame(),
        SleepFrame(0.4),  # the STT's final transcript
        ask("Still there?"),
    ]
    down, _ = await run_test(llm(engines, idle_close_s=IDLE_CLOSE_S), frames_to_send=frames)
    assert reply_of(down) == "Hi.Still here."
    question = engines.chat.log.of_kind("chat")[-1]
    assert question["body"]["messages"][-1]["content"] == "Still there?"
    assert not question["new_connection"]
