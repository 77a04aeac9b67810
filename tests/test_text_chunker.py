import asyncio

import pytest
from pipecat.frames.frames import (
    AggregatedTextFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
)
from pipecat.tests.utils import SleepFrame, run_test

from processors.text_chunker import TextChunker

pytestmark = pytest.mark.unit


def texts(frames) -> list[str]:
    return [f.text for f in frames if isinstance(f, AggregatedTextFrame)]


async def test_sentences_stream_out_as_they_complete_and_the_rest_at_the_end():
    chunker = TextChunker(min_chars=10, max_wait_s=5)
    tokens = ["The weather ", "is sunny. ", "Take a ", "hat with ", "you"]
    down, _ = await run_test(
        chunker,
        frames_to_send=[
            LLMFullResponseStartFrame(),
            *[LLMTextFrame(t) for t in tokens],
            LLMFullResponseEndFrame(),
        ],
    )
    assert texts(down) == ["The weather is sunny.", "Take a hat with you"]
    kinds = [type(f) for f in down]
    # Exactly one aggregation stage: no raw LLM tokens reach the TTS.
    assert LLMTextFrame not in kinds
    assert kinds.index(LLMFullResponseEndFrame) > max(
        i for i, k in enumerate(kinds) if k is AggregatedTextFrame
    )


async def test_a_stalled_model_still_gets_its_words_spoken_after_the_max_wait():
    chunker = TextChunker(min_chars=10, max_wait_s=0.1)
    down, _ = await run_test(
        chunker,
        frames_to_send=[
            LLMFullResponseStartFrame(),
            LLMTextFrame("Let me think about wh"),
            SleepFrame(sleep=0.4),
            LLMTextFrame("ether that works."),
            LLMFullResponseEndFrame(),
        ],
    )
    # The first words came out on the deadline; once overdue again, the late text is
    # cut at its last word gap too rather than waiting on a boundary that may not come.
    assert texts(down) == ["Let me think about", "whether that", "works."]


async def test_interruption_drops_held_text_so_it_is_never_spoken():
    chunker = TextChunker(min_chars=10, max_wait_s=0.1)
    down, _ = await run_test(
        chunker,
        frames_to_send=[
            LLMFullResponseStartFrame(),
            LLMTextFrame("This old answer must vanish"),
            SleepFrame(sleep=0.05),
            InterruptionFrame(),
            SleepFrame(sleep=0.3),
            LLMFullResponseStartFrame(),
            LLMTextFrame("New answer."),
            LLMFullResponseEndFrame(),
        ],
    )
    assert texts(down) == ["New answer."]


async def test_the_deadline_timer_is_gone_once_the_reply_ends():
    chunker = TextChunker(min_chars=10, max_wait_s=0.05)
    await run_test(
        chunker,
        frames_to_send=[LLMTextFrame("Held text"), LLMFullResponseEndFrame()],
    )
    await asyncio.sleep(0.1)
    assert chunker._timer is None


async def test_text_an_interruption_overtook_is_never_spoken():
    """On a busy loop an interruption can be handled before text queued ahead of it."""
    chunker = TextChunker(min_chars=10, max_wait_s=5)
    overtaken = LLMTextFrame("The old reply goes on. ")
    down, _ = await run_test(
        chunker,
        frames_to_send=[
            InterruptionFrame(),
            overtaken,
            LLMFullResponseStartFrame(),
            LLMTextFrame("The new reply."),
            LLMFullResponseEndFrame(),
        ],
    )
    assert texts(down) == ["The new reply."]
