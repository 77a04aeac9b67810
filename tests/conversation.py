"""One short conversation through the real stack: join, greeting, one question, leave.

Shared by the tests and `python -m bench soak`, so it reports failures as exceptions
rather than failing a test.
"""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from engines import tone
from tests.participant import LISTEN_RATE, Participant, is_whole_reply
from tests.session_server import SessionServer

POLL_S = 0.1


class ConversationFailed(Exception):
    """A step of the conversation did not happen in time, or the server refused it."""


@dataclass
class Conversation:
    """What one conversation went through."""

    room: str
    identity: str
    seconds: float


async def converse(
    server: SessionServer,
    question: bytes,
    *,
    greeting: str,
    reply: str,
    step_timeout_s: float = 60,
) -> Conversation:
    """Hold one conversation; raises `ConversationFailed` naming the step that failed."""
    started = time.monotonic()
    status, body = await server.post("/connect")
    if status != 200:
        raise ConversationFailed(f"/connect answered {status}: {body.get('reason')}")
    participant = Participant()
    try:
        await asyncio.wait_for(participant.join(body["url"], body["token"]), step_timeout_s)

        def heard(since: float = 0.0) -> list[int]:
            return tone.decode(participant.audio(since), LISTEN_RATE)

        greeting_code, reply_code = tone.code(greeting), tone.code(reply)
        await _until_heard(heard, greeting_code, step_timeout_s, "greeting")
        spoken_at = participant.say(question)
        await _until_heard(lambda: heard(spoken_at), reply_code, step_timeout_s, "reply")
    except TimeoutError:
        raise ConversationFailed("joining the room timed out") from None
    finally:
        await participant.leave()
    return Conversation(body["room"], body["identity"], time.monotonic() - started)


async def _until_heard(
    heard: Callable[[], list[int]], expected: list[int], timeout_s: float, what: str
) -> None:
    """Wait until `heard()` is the whole of `expected`; fail naming what was heard."""
    deadline = time.monotonic() + timeout_s
    while not is_whole_reply(heard(), expected):
        if time.monotonic() > deadline:
            raise ConversationFailed(f"no {what} heard within {timeout_s:.0f}s (heard {heard()})")
        await asyncio.sleep(POLL_S)
