"""End to end through a real livekit-server: real bots spawned by the real session server.

A LiveKit participant takes its token from `/connect`, speaks espeak-ng speech into a
microphone track at real-time pace and records the bot's audio; the engine stand-ins run
in this process, so the tests can script them, break them and read what they received.
Figures measured at the participant are printed (run with -s to see them).
"""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio

from bench.listener.listener import voiced
from engines import tone
from tests.conftest import ADMIN_TOKEN, SECRETS
from tests.participant import LISTEN_RATE, Participant, is_whole_reply
from tests.stack import GREETING, Stack, start_stack
from tests.waiting import until

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

METRIC_FIELDS = (
    "llm_ttft_ms",
    "tts_first_audio_latency_ms",
    "e2e_first_audio_ms",
    "endpointer_latency_ms",
    "voice_to_voice_ms",
)
# Every word the conversation scripts use; none may reach a log line.
SCRIPT_WORDS: set[str] = set()


def scripted(text: str) -> str:
    """Register conversation text, so the secrets test can look for it in the logs."""
    SCRIPT_WORDS.update(w for w in tone.words_of(text) if len(w) > 4)
    return text


# Every scenario runs with bots as the server's own processes, and with bots LiveKit
# dispatches to a worker host.
SESSION_BACKENDS = ["process", "dispatch"]


@pytest_asyncio.fixture(loop_scope="module", scope="module", params=SESSION_BACKENDS)
async def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    folder = tmp_path_factory.mktemp(f"e2e-{request.param}")
    async for running in start_stack(folder, session_backend=request.param):
        yield running


@dataclass
class Caller:
    """A participant in a room served by a bot, with helpers to converse and measure."""

    participant: Participant
    room: str
    identity: str

    def heard(self, since: float = 0.0, until: float = float("inf")) -> list[int]:
        return tone.decode(self.participant.audio(since, until), LISTEN_RATE)

    def loud_times(self, since: float = 0.0) -> list[float]:
        """Arrival times of audio frames that carry sound."""
        return [at for at, pcm in self.participant.heard if at >= since and _loud(pcm)]

    def silent_from(self, since: float, quiet_s: float = 0.3) -> float | None:
        """Start of the first run of `quiet_s` without sound after `since`."""
        last = since
        for at in self.loud_times(since):
            if at - last >= quiet_s:
                return last
            last = at
        return last if time.monotonic() - last >= quiet_s else None

    def errors(self) -> list[str]:
        return [m["data"]["error"] for m in self.participant.messages if m.get("type") == "error"]


def _loud(pcm: bytes) -> bool:
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)
    return bool(samples.size) and float(np.sqrt(np.mean(samples**2))) > 300


async def join(
    stack: Stack, room: str | None = None, participant: Participant | None = None
) -> Caller:
    """Connect through `/connect`, join, and wait for the greeting to be heard in full."""
    status, body = await stack.server.post("/connect", {"room": room} if room else {})
    assert status == 200, body
    participant = participant or Participant()
    await participant.join(body["url"], body["token"])
    caller = Caller(participant, body["room"], body["identity"])
    await until(
        lambda: is_whole_reply(caller.heard(), tone.code(GREETING)),
        30,
        lambda: f"the greeting {tone.code(GREETING)} in {caller.room}; heard {caller.heard()}",
    )
    return caller


async def ask(
    caller: Caller,
    pcm: bytes,
    reply: str,
    timeout: float = 30,
    answered: Callable[[list[int], list[int]], bool] = is_whole_reply,
) -> float:
    """Say something and wait until the reply is heard; return when speech ended.

    `answered(heard, expected)` judges what was heard since: the whole reply by default.
    """
    spoken_at = caller.participant.say(pcm)
    expected = tone.code(reply)
    await until(
        lambda: answered(caller.heard(since=spoken_at), expected),
        timeout,
        lambda: f"the reply {expected}, heard {caller.heard(since=spoken_at)}",
    )
    return spoken_at


def metrics(stack: Stack, room: str) -> list[dict[str, Any]]:
    return [
        r for r in stack.records() if r.get("event") == "Turn metrics" and r.get("room") == room
    ]


def process_exists(pid: int) -> bool:
    """Whether the bot's process is still there.

    A dispatched bot's job process exits moments after it reported the end; the
    server's own bots are reaped by then.
    """
    return Path(f"/proc/{pid}").exists()


def seconds(pcm: bytes) -> float:
    return len(pcm) / 32000


async def test_round_trip(stack: Stack, speak: Callable[[str], bytes]) -> None:
    caller = await join(stack)
    joined = [r for r in stack.records() if "Bot joined after" in r.get("message", "")]
    question = speak("What is the weather like in Paris today?")
    reply = scripted("Parisian skies remain cloudless. Expect gentle breezes throughout afternoon.")
    stack.transcriber.script[:] = [scripted("weather forecast paris")]
    stack.reply_queue[:] = [reply]
    stack.engines.chat.faults.chunk_delay_s = 0.12  # the LLM streams for about 1.2 s
    try:
        utterances_before = len(stack.engines.voxtral.log.of_kind("utterance"))
        spoken_at = await ask(caller, question, reply)
    finally:
        stack.engines.chat.faults.chunk_delay_s = 0.0

    # The STT stand-in received the question as audio of about its length.
    utterance = stack.engines.voxtral.log.of_kind("utterance")[utterances_before]
    received = utterance["audio_bytes"] / 32000
    assert seconds(question) - 0.5 <= received <= seconds(question) + 1.2

    # The participant heard sound, and it began before the LLM had finished streaming.
    first_audio = min(caller.loud_times(since=spoken_at))
    llm_done = stack.engines.chat.log.of_kind("chat_done")[-1]["at"]
    assert first_audio < llm_done, "speech started only after the whole LLM reply"

    await until(lambda: metrics(stack, caller.room), 10, "the Turn metrics record")
    record = metrics(stack, caller.room)[-1]
    for name in METRIC_FIELDS:
        assert isinstance(record[name], float) and record[name] >= 0, name
    assert record["barge_in_cutoff_ms"] is None
    # From the end of the voice, not of the espeak file's trailing silence.
    voice_ended_at = spoken_at - seconds(question[len(voiced(question)) :])
    measured_ms = (first_audio - voice_ended_at) * 1000
    # The bot reconstructs when the voice ended (its jitter buffer included), but not
    # the codec framing and the participant's own jitter buffer on the way back.
    assert record["voice_to_voice_ms"] <= measured_ms + 250
    assert measured_ms - record["voice_to_voice_ms"] < 1500
    # The reply starts preemptively, before the turn ends, but never before the voice.
    assert record["voice_to_voice_ms"] >= record["llm_ttft_ms"]
    assert any(m.get("data", {}).get("type") == "turn-metrics" for m in caller.participant.messages)
    print(
        f"\nround trip: bot joined {joined[-1]['message'] if joined else '?'}; "
        f"participant voice-to-voice {measured_ms:.0f} ms, bot-logged {record['voice_to_voice_ms']}"
        f" ms (endpointing {record['endpointer_latency_ms']}, e2e {record['e2e_first_audio_ms']},"
        f" llm ttft {record['llm_ttft_ms']}, tts first audio "
        f"{record['tts_first_audio_latency_ms']})"
    )
    await caller.participant.leave()


async def test_barge_in(stack: Stack, speak: Callable[[str], bytes]) -> None:
    caller = await join(stack)
    long_reply = scripted(
        " ".join("amber basil cedar dahlia ember fennel garnet hazel indigo juniper".split() * 4)
    )
    new_reply = scripted("Halting narration promptly.")
    old, new = tone.code(long_reply), tone.code(new_reply)
    assert not set(old) & set(new)
    # The VAD may part the question at a short pause: its later parts transcribe as nothing,
    # and the interruption's words are scripted only once the long reply is playing.
    stack.transcriber.script[:] = [scripted("narrate lengthy saga"), ""]
    stack.reply_queue[:] = [long_reply, new_reply]
    stack.engines.chatterbox.backend.realtime_factor = 1.0  # TTS requests stay in flight
    try:
        asked_at = caller.participant.say(speak("Tell me a long story."))
        await until(lambda: len(caller.heard(since=asked_at)) >= 6, 30, "the long reply")
        stack.transcriber.script[:] = [scripted("halt narration"), ""]
        interruption = speak("Please stop.")
        interrupted_at = caller.participant.say(interruption) - seconds(interruption)
        await until(
            lambda: caller.heard(since=interrupted_at)[-len(new) :] == new, 30, "the new reply"
        )
    finally:
        stack.engines.chatterbox.backend.realtime_factor = 0.0

    silent_at = caller.silent_from(interrupted_at)
    assert silent_at is not None
    cutoff_ms = (silent_at - interrupted_at) * 1000
    # The bot pauses on the sound itself (~0.1 s), not when the VAD has confirmed speech
    # (~0.35 s), and no old frame slips out when the interruption then drops the reply.
    assert cutoff_ms < 350, f"audio went on {cutoff_ms:.0f} ms after the user began speaking"
    heard_before = caller.heard(since=asked_at, until=silent_at + 0.05)
    assert heard_before and len(heard_before) < len(old) and set(heard_before) <= set(old)
    assert caller.heard(since=silent_at + 0.05) == new, "nothing of the old reply later"
    await until(
        lambda: any(r["barge_in_cutoff_ms"] is not None for r in metrics(stack, caller.room)),
        10,
        "a barge-in record",
    )
    logged = next(
        r["barge_in_cutoff_ms"]
        for r in metrics(stack, caller.room)
        if r["barge_in_cutoff_ms"] is not None
    )
    print(
        f"\nbarge-in: participant heard silence {cutoff_ms:.0f} ms after starting to speak "
        f"(VAD_START_SECS 0.2 included); bot-logged cutoff {logged} ms"
    )
    await caller.participant.leave()


async def test_a_pause_mid_sentence_gets_one_reply_to_the_whole_sentence(
    stack: Stack, speak: Callable[[str], bytes]
) -> None:
    caller = await join(stack)
    whole = "reserve a table for four people"
    reply = scripted("Reservation confirmed.")
    early = scripted("Premature guess about tables and chairs.")
    assert not set(tone.code(reply)) & set(tone.code(early))
    # Extra utterances (a pause inside a half) transcribe as nothing.
    stack.transcriber.script[:] = [scripted("reserve a table"), scripted("for four people"), ""]
    stack.replies[whole] = reply
    stack.reply_queue[:] = [early]
    chats_before = len(stack.engines.chat.log.of_kind("chat"))
    first, rest = voiced(speak("Reserve a table")), speak("for four people.")
    await asyncio.sleep(0.5)  # the greeting's last beep is still arriving when decoded
    stack.engines.chat.faults.chunk_delay_s = 0.05  # an early reply is still streaming
    try:
        started = time.monotonic()
        caller.participant.say(first + bytes(int(0.15 * 32000)) + rest)
        await until(
            lambda: is_whole_reply(caller.heard(since=started), tone.code(reply)),
            30,
            lambda: f"the reply, heard {caller.heard(since=started)}",
        )
        await asyncio.sleep(1.0)
    finally:
        stack.replies.clear()
        stack.engines.chat.faults.chunk_delay_s = 0.0

    # One reply, to the whole sentence; nothing of a reply to its first half.
    assert is_whole_reply(caller.heard(since=started), tone.code(reply))
    chats = stack.engines.chat.log.of_kind("chat")[chats_before:]
    questions = [r["body"]["messages"][-1]["content"] for r in chats]
    assert questions[-1] == whole
    # Any reply started before the sentence was finished was closed by the bot.
    closed = {e["request"] for e in stack.engines.chat.log.of_kind("chat_cancelled")}
    assert {r["request"] for r in chats[:-1]} <= closed
    print(f"\nmid-sentence pause: {len(chats) - 1} preemptive request(s) withdrawn")
    await caller.participant.leave()


async def test_two_rooms_at_once_stay_isolated(stack: Stack, speak: Callable[[str], bytes]) -> None:
    first, second = await asyncio.gather(join(stack), join(stack))
    assert first.room != second.room
    short_reply, long_reply = scripted("Falcon harbor."), scripted("Glacier meadow lantern.")
    assert not set(tone.code(short_reply)) & set(tone.code(long_reply))
    stack.transcriber.by_length = (3.0, scripted("falcon query"), scripted("glacier query"))
    stack.replies.update({"falcon": short_reply, "glacier": long_reply})
    connections_before = {u["connection"] for u in stack.engines.voxtral.log.of_kind("utterance")}
    try:
        await asyncio.gather(
            ask(first, speak("Hi there."), short_reply),
            ask(
                second,
                # Said without a pause: each utterance is classified by its own length,
                # and a pause of VAD_PAUSE_SECS would split the question into short ones.
                speak("Please tell me everything you know about the history of the Roman empire"),
                long_reply,
            ),
        )
    finally:
        stack.transcriber.by_length = None
        stack.replies.clear()
    # Each heard only its own bot: nothing of the other reply.
    assert not set(first.heard(since=0)) & set(tone.code(long_reply))
    assert not set(second.heard(since=0)) & set(tone.code(short_reply))
    # Each bot's STT connection received one room's audio only.
    by_connection: dict[str, set[bool]] = {}
    for u in stack.engines.voxtral.log.of_kind("utterance"):
        if u["connection"] not in connections_before:
            by_connection.setdefault(u["connection"], set()).add(u["audio_bytes"] > 3.0 * 32000)
    assert len(by_connection) == 2 and all(len(kinds) == 1 for kinds in by_connection.values())
    await asyncio.gather(first.participant.leave(), second.participant.leave())


async def test_a_client_slow_to_start_playing_hears_the_whole_greeting(stack: Stack) -> None:
    """The greeting waits until the client says it plays the bot's audio.

    Here the client plays 1.5 s after the bot's track reached it, longer than the
    greeting lasts: spoken when the SFU started forwarding, it would be lost.
    """
    caller = await join(stack, participant=Participant(plays_after_s=1.5))
    await caller.participant.leave()


async def test_the_greeting_is_synthesised_before_anyone_can_hear_it(stack: Stack) -> None:
    """Fetched while the client joins, the greeting plays without a wait for the engine."""
    asked = time.monotonic()
    caller = await join(stack)
    greeting = next(
        r
        for r in stack.engines.chatterbox.log.of_kind("speech")
        if r["at"] > asked and r["body"]["input"] == GREETING
    )
    assert caller.participant.track_arrived_at is not None
    assert greeting["at"] < caller.participant.track_arrived_at
    await caller.participant.leave()


async def test_a_client_that_never_says_it_plays_is_greeted_all_the_same(stack: Stack) -> None:
    caller = await join(stack, participant=Participant(says_ready=False))
    await caller.participant.leave()


async def test_bot_leaves_when_the_participant_does(stack: Stack) -> None:
    caller = await join(stack)
    (session,) = [s for s in await stack.server.sessions() if s["room"] == caller.room]
    left_at = time.monotonic()
    await caller.participant.leave()

    async def gone() -> bool:
        return all(s["room"] != caller.room for s in await stack.server.sessions())

    while not await gone():
        assert time.monotonic() - left_at < 10, "bot still running 10 s after the room emptied"
        await asyncio.sleep(0.1)
    print(f"\nthe bot's slot was freed {time.monotonic() - left_at:.2f} s after leaving")
    await until(lambda: not process_exists(session["pid"]), 5, "the bot's process to exit")


async def test_stt_outage_is_reported_and_recovered(
    stack: Stack, speak: Callable[[str], bytes]
) -> None:
    caller = await join(stack)
    reply = scripted("Recovered transcription pathway.")
    stack.transcriber.script[:] = [scripted("verify recovery")]
    stack.reply_queue[:] = [reply]
    await stack.engines.voxtral.stop()
    try:
        caller.participant.say(speak("Can you hear me now?"))
        await until(caller.errors, 20, "an error message at the client")
    finally:
        await stack.engines.voxtral.restart()
    assert any("speech recognition" in e.lower() for e in caller.errors()), caller.errors()
    assert "agent" in {p.identity for p in caller.participant.room.remote_participants.values()}
    connects = len(stack.engines.voxtral.log.of_kind("realtime_connect"))
    await until(
        lambda: len(stack.engines.voxtral.log.of_kind("realtime_connect")) > connects,
        15,
        "the bot to reconnect to the STT",
    )
    await ask(caller, speak("Can you hear me now?"), reply)
    await caller.participant.leave()


async def test_tts_hang_is_reported_and_the_next_turn_works(
    stack: Stack, speak: Callable[[str], bytes]
) -> None:
    caller = await join(stack)
    lost, reply = scripted("Vanishing syllables."), scripted("Melodic cadence restored.")
    stack.transcriber.script[:] = [scripted("opening gambit"), scripted("retried gambit")]
    stack.reply_queue[:] = [lost, reply]
    counted = {"name": "voice_agent_engine_errors_total", "engine": "tts", "kind": "timeout"}
    timeouts_before = await stack.metric(**counted)
    stack.engines.chatterbox.faults.hang = True
    try:
        caller.participant.say(speak("Say something please."))
        await until(caller.errors, 20, "an error message at the client")
    finally:
        stack.engines.chatterbox.faults.hang = False
    assert any("speech" in e.lower() for e in caller.errors()), caller.errors()
    assert await stack.metric(**counted) - timeouts_before == 1
    await ask(caller, speak("Say something please."), reply)
    await caller.participant.leave()


async def test_llm_rate_limits_are_retried(stack: Stack, speak: Callable[[str], bytes]) -> None:
    caller = await join(stack)
    reply = scripted("Patience rewarded eventually.")
    stack.transcriber.script[:] = [scripted("throttled question")]
    stack.reply_queue[:] = [reply]
    requests_before = len(stack.engines.chat.log.of_kind("chat"))
    counted = {"name": "voice_agent_engine_retries_total", "engine": "llm", "kind": "status"}
    retries_before = await stack.metric(**counted)
    stack.engines.chat.faults.statuses[:] = [429, 429]
    stack.engines.chat.faults.retry_after = "0.2"
    try:
        await ask(caller, speak("What is the answer?"), reply)
    finally:
        stack.engines.chat.faults.retry_after = None
    assert len(stack.engines.chat.log.of_kind("chat")) - requests_before == 3
    assert await stack.metric(**counted) - retries_before == 2
    assert not caller.errors()
    await caller.participant.leave()


async def test_logs_hold_no_secret_and_no_transcript(stack: Stack) -> None:
    """Runs last in this module: it reads the log of every scenario above."""
    text = stack.log_text()
    assert "Turn metrics" in text and "Joined the room" in text, "the bots' logs were captured"
    for secret in [*SECRETS.values(), ADMIN_TOKEN]:
        assert secret not in text
    # Whole words: "expect" from a script must not match a library's "unexpectedly".
    leaked = sorted(SCRIPT_WORDS & set(tone.words_of(text)))
    assert SCRIPT_WORDS and not leaked, leaked


@pytest.mark.parametrize("session_backend", SESSION_BACKENDS)
async def test_sfu_loss_ends_the_bot_and_frees_the_slot(
    tmp_path: Path, speak: Callable[[str], bytes], session_backend: str
) -> None:
    async for own in start_stack(tmp_path, session_backend=session_backend):
        caller = await join(own)
        (session,) = await own.server.sessions()
        own.livekit.kill()
        killed_at = time.monotonic()
        while await own.server.sessions():
            assert time.monotonic() - killed_at < 30, "bot still running 30 s after SFU loss"
            await asyncio.sleep(0.2)

        def bot_gone(pid: int = session["pid"]) -> bool:
            return not process_exists(pid)

        await until(bot_gone, 5, "the bot gone, not a zombie")
        exits = [r for r in own.server.records() if "Bot exited" in r.get("message", "")]
        assert exits and "(0)" in exits[-1]["message"], exits
        print(f"\nSFU loss: bot exited {time.monotonic() - killed_at:.2f} s after the kill")
        await caller.participant.leave()


@pytest.mark.parametrize("level", ["WARNING", "ERROR"])
async def test_a_conversation_works_whatever_the_log_level(
    tmp_path: Path, speak: Callable[[str], bytes], level: str
) -> None:
    """Nothing the server relies on travels in a log line."""
    async for own in start_stack(tmp_path, log_level=level):
        caller = await join(own)
        (session,) = await own.server.sessions()
        assert session["state"] == "running"
        reply = scripted("Quiet logs suffice.")
        own.transcriber.script[:] = [scripted("quiet question")]
        own.reply_queue[:] = [reply]
        await ask(caller, speak("Are you still there?"), reply)
        await caller.participant.leave()
        allowed = {"WARNING", "ERROR", "CRITICAL"} - ({"WARNING"} if level == "ERROR" else set())
        levels = {r["level"] for r in own.server.records()}
        assert levels <= allowed, levels
