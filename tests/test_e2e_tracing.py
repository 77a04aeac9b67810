"""Traces end to end: the real stack exports to a real Jaeger, read back through its query API.

Two conversations of two turns each go through `/connect`, livekit-server and real bots;
then each must be one trace holding the /connect span, the bot's conversation span, a
span per turn and, under each answered turn, the STT, LLM, TTS and output spans, and no
word of what was said, answered or prompted in any attribute.
"""

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engines import tone
from tests.jaeger import Jaeger
from tests.stack import GREETING, start_stack
from tests.test_e2e_livekit import ask, join

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

SERVICE = "voice-agent-e2e"
SYSTEM_PROMPT = "Speak as Quillon, the tersest cartographer of Vandermeer."
# Per conversation, per turn: what the STT stand-in hears and what the LLM answers.
CONVERSATIONS = [
    [("harbor lighthouse beacon", "Lighthouses guide sailors."), ("tidal schedule", "Tides turn.")],
    [("orchard apples blossom", "Orchards bloom quickly."), ("cider pressing", "Presses squeeze.")],
]
QUESTIONS = ["Where is the lighthouse?", "When is the tide?"]


def words(*texts: str) -> set[str]:
    return {w for text in texts for w in tone.words_of(text) if len(w) > 4}


def spans_of(trace: dict[str, Any]) -> tuple[dict[str, dict], dict[str, list[dict]]]:
    """Spans by id, and children by parent id."""
    by_id = {span["spanID"]: span for span in trace["spans"]}
    children: dict[str, list[dict]] = {}
    for span in trace["spans"]:
        for ref in span["references"]:
            if ref["refType"] == "CHILD_OF":
                children.setdefault(ref["spanID"], []).append(span)
    return by_id, children


def names(spans: list[dict]) -> list[str]:
    return sorted(span["operationName"] for span in spans)


async def test_each_conversation_is_one_trace_of_turns_without_conversation_text(
    tmp_path: Path, speak: Callable[[str], bytes]
) -> None:
    jaeger = await Jaeger.start(tmp_path)
    try:
        async for stack in start_stack(
            tmp_path,
            otel_exporter_otlp_endpoint=jaeger.otlp_endpoint,
            otel_service_name=SERVICE,
            system_prompt=SYSTEM_PROMPT,
        ):
            callers = []
            for turns in CONVERSATIONS:
                caller = await join(stack)
                for question, (transcript, reply) in zip(QUESTIONS, turns, strict=True):
                    stack.transcriber.script[:] = [transcript]
                    stack.reply_queue[:] = [reply]
                    await ask(caller, speak(question), reply)
                await caller.participant.leave()
                callers.append(caller)
            # Each bot exports its last spans as it exits; the server every few seconds.
            deadline = time.monotonic() + 30
            while await stack.server.sessions():
                assert time.monotonic() < deadline, "the bots did not end"
                await asyncio.sleep(0.2)
            traces = await complete_traces(jaeger, expected=len(CONVERSATIONS))
    finally:
        jaeger.stop()

    for trace in traces:
        by_id, children = spans_of(trace)
        (connect,) = [s for s in by_id.values() if s["operationName"] == "POST /connect"]
        assert not connect["references"], "the /connect span is the root of the trace"
        (conversation,) = children.get(connect["spanID"], [])
        assert conversation["operationName"] == "conversation"
        turn_spans = children.get(conversation["spanID"], [])
        assert names(turn_spans) == ["turn"] * (1 + len(QUESTIONS)), "greeting, then one each"
        under = {t["spanID"]: names(children.get(t["spanID"], [])) for t in turn_spans}
        answered = [t for t in turn_spans if "stt" in under[t["spanID"]]]
        assert len(answered) == len(QUESTIONS), under
        for turn in answered:
            assert set(names(children[turn["spanID"]])) >= {"stt", "llm", "tts", "output"}
        # The greeting is spoken in the first turn, before anyone asked anything.
        first = min(turn_spans, key=lambda t: t["startTime"])
        assert set(names(children.get(first["spanID"], []))) >= {"tts", "output"}

    said = words(
        GREETING,
        SYSTEM_PROMPT,
        *(text for turns in CONVERSATIONS for pair in turns for text in pair),
    )
    exported = json.dumps(traces).lower()
    assert not sorted(w for w in said if w in exported)
    for caller in callers:
        assert caller.identity.lower() not in exported and caller.room.lower() not in exported


async def complete_traces(jaeger: Jaeger, expected: int) -> list[dict[str, Any]]:
    """The service's traces once there are `expected` of them, each with its bot's spans."""
    deadline = time.monotonic() + 30
    while True:
        traces = await jaeger.traces(SERVICE)
        done = [t for t in traces if {"POST /connect", "conversation"} <= span_names(t)]
        if len(done) >= expected or time.monotonic() > deadline:
            assert len(traces) == expected, [sorted(span_names(t)) for t in traces]
            return traces
        await asyncio.sleep(0.5)


def span_names(trace: dict[str, Any]) -> set[str]:
    return {span["operationName"] for span in trace["spans"]}
