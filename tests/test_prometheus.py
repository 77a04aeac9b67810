"""A real Prometheus scrapes the session server while two conversations go through LiveKit.

What the bots logged (one `Turn metrics` record per turn) must be what Prometheus holds,
after the bots have exited: their counts reach the server's `/metrics` through its
multiprocess folder, not a port per bot.
"""

import asyncio
import time
from collections.abc import Callable

import pytest

from tests.conftest import ADMIN_TOKEN
from tests.conversation import converse
from tests.prometheus_server import PrometheusServer
from tests.stack import GREETING, start_stack

pytestmark = pytest.mark.e2e

REPLY = "Quarter past nine."


async def settled(
    prometheus: PrometheusServer, expression: str, expected: object, timeout: float = 30
) -> None:
    """Wait until Prometheus holds `expression` at `expected` (a number or its approx)."""
    deadline = time.monotonic() + timeout
    while (held := await prometheus.query(expression)) is None or held != expected:
        if time.monotonic() > deadline:
            pytest.fail(f"{expression} is {held} in Prometheus, expected {expected}")
        await asyncio.sleep(0.5)


async def test_prometheus_holds_every_turn_the_bots_logged(
    tmp_path, speak: Callable[[str], bytes]
) -> None:
    question = speak("What time is it?")
    async for stack in start_stack(tmp_path):
        prometheus = await PrometheusServer.start(
            tmp_path, f"127.0.0.1:{stack.server.port}", ADMIN_TOKEN
        )
        try:
            stack.transcriber.script[:] = ["what time is it"]
            stack.reply_queue[:] = [REPLY]
            talks = [
                await converse(stack.server, question, greeting=GREETING, reply=REPLY)
                for _ in range(2)
            ]
            await settled(prometheus, "sum(voice_agent_sessions_started_total)", 2)
            await settled(prometheus, "sum(voice_agent_sessions_active)", 0)

            turns = [r for r in stack.server.records() if r.get("event") == "Turn metrics"]
            answered = [r for r in turns if r["voice_to_voice_ms"] is not None]
            assert len(answered) == 2, turns  # one question per conversation
            await settled(prometheus, "sum(voice_agent_turns_total)", len(turns))
            await settled(
                prometheus, "sum(voice_agent_voice_to_voice_seconds_count)", len(answered)
            )
            await settled(
                prometheus,
                "sum(voice_agent_voice_to_voice_seconds_sum)",
                pytest.approx(sum(r["voice_to_voice_ms"] for r in answered) / 1000, abs=0.01),
            )

            names = {t.room for t in talks} | {t.identity for t in talks}
            for labels in await prometheus.series('{__name__=~"voice_agent_.*"}'):
                assert not names & set(labels.values()), labels
                assert not any(name in value for name in names for value in labels.values())
        finally:
            prometheus.stop()
