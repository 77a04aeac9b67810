"""Scaling out on LiveKit's agent dispatch: all real processes on loopback.

livekit-server nodes sharing a real Redis, worker hosts (`python -m bot worker`) each in
its own process group, the session server with `SESSION_BACKEND=dispatch`, and LiveKit
participants speaking espeak-ng speech and decoding the tone-coded replies they hear.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from bot.settings import Settings
from engines import tone
from tests.cluster import AGENT_NAME, Cluster, running_cluster
from tests.participant import Participant, is_whole_reply
from tests.session_server import SessionServer
from tests.stack import GREETING
from tests.test_e2e_livekit import Caller, ask
from tests.waiting import until
from tests.worker_host import WorkerHost

pytestmark = [pytest.mark.scale, pytest.mark.asyncio(loop_scope="module")]

RESUME_LINE = "Sorry, I lost you for a moment."
Speak = Callable[[str], bytes]
# A wait between two 10 ms microphone frames the bot can hear as a pause.
SPEECH_STALL_S = 0.1


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    async with running_cluster(tmp_path_factory.mktemp("scale"), nodes=2) as running:
        await running.start_server()
        yield running


@pytest_asyncio.fixture(loop_scope="module", autouse=True)
async def own_workers(cluster: Cluster) -> AsyncIterator[None]:
    """Each test starts the workers it needs; they (and its sessions) are gone after it."""
    yield
    for server in cluster.servers:
        await server.end_all()
    await asyncio.gather(*(asyncio.to_thread(w.stop) for w in cluster.workers))
    cluster.workers.clear()


def server(cluster: Cluster) -> SessionServer:
    return cluster.servers[0]


async def connect(cluster: Cluster) -> Caller:
    """`/connect` to a new room, join it and wait for the greeting."""
    status, body = await server(cluster).post("/connect", {})
    assert status == 200, body
    participant = Participant()
    await participant.join(body["url"], body["token"])
    caller = Caller(participant, body["room"], body["identity"])
    await until(
        lambda: ends_with(caller.heard(), tone.code(GREETING)),
        30,
        lambda: f"the greeting in {caller.room}, heard {caller.heard()}",
    )
    return caller


def whole_or_last_after_a_stall(caller: Caller) -> Callable[[list[int], list[int]], bool]:
    """`ask`'s judge: the whole reply, or the reply last if our own speech stalled.

    Six participants talking from this one process on two busy cores: now and then its
    microphone goes unscheduled mid-phrase, the bot rightly hears a pause, answers the
    first half and is interrupted by the rest. Made before `ask` speaks, so it watches
    only that speech.
    """
    first_sample = caller.participant.queued_samples

    def answered(heard: list[int], expected: list[int]) -> bool:
        if is_whole_reply(heard, expected):
            return True
        stalled = caller.participant.longest_send_gap(first_sample) > SPEECH_STALL_S
        return stalled and ends_with(heard, expected)

    return answered


def ends_with(heard: list[int], expected: list[int]) -> bool:
    """Whether the last words heard are `expected`, give or take one word.

    With six pipelines starting at once on two busy cores, a bot's audio is now and then
    distorted on arrival: its first ~100 ms after silence (see `is_whole_reply`), which
    can turn the first beep into another or into two, or a short beep lost mid-line while
    the bot's process goes unscheduled (seen at load 22).
    """
    lengths = range(max(len(expected) - 1, 1), len(expected) + 2)
    return any(one_word_apart(heard[-n:], expected) for n in lengths)


def one_word_apart(heard: list[int], expected: list[int]) -> bool:
    """Whether the two differ by at most one word inserted, dropped or changed."""
    if abs(len(heard) - len(expected)) > 1:
        return False
    i = 0
    while i < min(len(heard), len(expected)) and heard[i] == expected[i]:
        i += 1
    rest = heard[i + 1 :], expected[i + 1 :]
    return rest[0] == rest[1] or heard[i:] == rest[1] or rest[0] == expected[i:]


def accepted_rooms(worker: WorkerHost) -> list[str]:
    return [r["room"] for r in worker.records() if r.get("message") == "Accepted a room"]


def host_of(room: str, workers: list[WorkerHost]) -> WorkerHost:
    (host,) = [w for w in workers if room in accepted_rooms(w)]
    return host


async def test_six_rooms_at_once_over_two_nodes_and_two_workers(
    cluster: Cluster, speak: Speak
) -> None:
    workers = [
        await cluster.start_worker("spread-a", node=0),
        await cluster.start_worker("spread-b", node=len(cluster.nodes) - 1),
    ]
    started = time.monotonic()
    callers = await asyncio.gather(*(connect(cluster) for _ in range(6)))
    print(f"\nsix rooms greeted {time.monotonic() - started:.2f} s after six /connect at once")
    cluster.reply_queue[:] = ["Doing well."]
    await asyncio.gather(
        *(
            ask(c, speak("How are you?"), "Doing well.", answered=whole_or_last_after_a_stall(c))
            for c in callers
        )
    )
    for caller in callers:
        assert len(await cluster.agents_in(caller.room)) == 1, caller.room
    taken = [accepted_rooms(w) for w in workers]
    print(f"jobs per worker: {[len(rooms) for rooms in taken]}")
    assert sorted(sum(taken, [])) == sorted(c.room for c in callers), "one job per room"
    assert all(taken), "both workers took rooms"
    most = Settings.model_fields["max_jobs_per_worker"].default
    assert max(len(rooms) for rooms in taken) <= most, "a worker over MAX_JOBS_PER_WORKER"
    sessions = await server(cluster).sessions()
    assert {s["room"] for s in sessions} == {c.room for c in callers}
    assert len({s["worker_id"] for s in sessions}) == 2, "/sessions spans both workers"
    await asyncio.gather(*(c.participant.leave() for c in callers))


async def test_killing_a_worker_mid_conversation_brings_a_new_bot_that_remembers(
    cluster: Cluster, speak: Speak
) -> None:
    workers = [await cluster.start_worker("kill-a"), await cluster.start_worker("kill-b")]
    caller = await connect(cluster)
    doomed = host_of(caller.room, workers)
    await tells_locker_number(cluster, caller, speak)
    (before,) = await cluster.agents_in(caller.room)

    doomed.kill_group()
    killed_at = time.monotonic()
    # The SFU would list the dead bot for 15 s and more; the replacement takes its place.
    replaced_after: list[float] = []

    async def replaced() -> bool:
        agents = await cluster.agents_in(caller.room)
        if any(a.sid != before.sid for a in agents):
            replaced_after.append(time.monotonic() - killed_at)
            return True
        return False

    while not await replaced():
        assert time.monotonic() - killed_at < 5, "no new bot within 5 s of the worker's death"
        await asyncio.sleep(0.1)
    await until(lambda: not doomed.group_pids(), 5, lambda: f"orphans: {doomed.group_pids()}")
    # (The end of the last reply may still arrive after the kill.)
    await apologises(caller, since=killed_at, timeout_s=15)
    print(f"\nnew bot in the room {replaced_after[0]:.2f} s after its worker was killed")

    await asks_remembering(cluster, caller, speak)
    (session,) = [s for s in await server(cluster).sessions() if s["room"] == caller.room]
    assert session["state"] == "running"
    await caller.participant.leave()


async def apologises(caller: Caller, since: float, timeout_s: float) -> None:
    """The caller hears a new bot open with the resume line (its apology) after `since`."""
    await until(
        lambda: ends_with(caller.heard(since=since), tone.code(RESUME_LINE)),
        timeout_s,
        lambda: f"the new bot's apology in {caller.room}, heard {caller.heard(since=since)}",
    )


async def tells_locker_number(cluster: Cluster, caller: Caller, speak: Speak) -> None:
    """The caller says something the next bot must remember.

    The STT stand-in repeats its last transcript: a sentence the VAD parts in two (a busy
    machine stretches a pause) must get no words the second time, not the same ones again.
    """
    cluster.transcriber.script[:] = ["my locker number is forty two", ""]
    cluster.reply_queue[:] = ["Noted."]
    await ask(caller, speak("My locker number is forty two."), "Noted.")


async def asks_remembering(cluster: Cluster, caller: Caller, speak: Speak) -> None:
    """The next question reaches the LLM with the turn `tells_locker_number` said first."""
    requests_before = len(cluster.engines.chat.log.of_kind("chat"))
    cluster.transcriber.script[:] = ["what is my locker number", ""]
    cluster.reply_queue[:] = ["Forty two."]
    await ask(caller, speak("What is my locker number?"), "Forty two.")
    (request,) = cluster.engines.chat.log.of_kind("chat")[requests_before:][:1]
    said = [m["content"] for m in request["body"]["messages"] if m["role"] == "user"]
    assert said[0] == "my locker number is forty two" and said[-1] == "what is my locker number"


async def test_sigterm_drains_a_worker_and_new_rooms_go_to_the_other(
    cluster: Cluster, speak: Speak
) -> None:
    draining = await cluster.start_worker("draining")
    caller = await connect(cluster)
    assert accepted_rooms(draining) == [caller.room]
    other = await cluster.start_worker("other")

    draining.terminate()
    await until(
        lambda: any("Draining" in r.get("message", "") for r in draining.records()),
        10,
        "the worker to start draining",
    )
    cluster.transcriber.script[:] = ["are you still there", ""]
    cluster.reply_queue[:] = ["Still here."]
    await ask(caller, speak("Are you still there?"), "Still here.")
    newcomer = await connect(cluster)
    assert accepted_rooms(other) == [newcomer.room]
    assert draining.process.poll() is None, "the drained worker waits for its conversation"

    left_at = time.monotonic()
    await caller.participant.leave()
    code = await asyncio.to_thread(draining.process.wait, 30)
    assert code == 0
    print(f"\ndrained worker exited {time.monotonic() - left_at:.2f} s after its caller left")
    await until(lambda: not draining.group_pids(), 5, lambda: f"left: {draining.group_pids()}")
    await newcomer.participant.leave()


async def test_a_conversation_outliving_the_drain_moves_to_another_worker(
    cluster: Cluster, speak: Speak
) -> None:
    """A drain that runs out stops the bot; the user keeps the conversation, as on a death."""
    drain_s = 2.0
    draining = await cluster.start_worker("expiring", drain_timeout_s=drain_s, bot_stop_grace_s=2)
    caller = await connect(cluster)
    await tells_locker_number(cluster, caller, speak)
    other = await cluster.start_worker("successor")

    draining.terminate()
    terminated_at = time.monotonic()
    assert await asyncio.to_thread(draining.process.wait, 30) == 0
    print(f"\ndrained worker exited {time.monotonic() - terminated_at:.2f} s after SIGTERM")
    await until(lambda: not draining.group_pids(), 5, lambda: f"left: {draining.group_pids()}")
    await apologises(caller, since=terminated_at + drain_s, timeout_s=20)
    assert accepted_rooms(other) == [caller.room]
    await asks_remembering(cluster, caller, speak)
    assert len(await cluster.agents_in(caller.room)) == 1
    await caller.participant.leave()


async def test_a_threaded_worker_runs_rooms_in_its_own_process_and_hands_them_over(
    cluster: Cluster, speak: Speak
) -> None:
    """`WORKER_JOB_EXECUTOR=thread`: the rooms share the host's process, not its fate.

    Each room is answered on its own and logged under its own name; a drain that runs
    out stops them all (no signal can reach a thread), and another worker resumes each.
    """
    shared = await cluster.start_worker(
        "threaded", worker_job_executor="thread", drain_timeout_s=1, bot_stop_grace_s=2
    )
    callers = await asyncio.gather(connect(cluster), connect(cluster))
    rooms = sorted(c.room for c in callers)
    assert sorted(accepted_rooms(shared)) == rooms
    assert shared.group_pids() == [shared.pid], "a job process: the rooms must run in the host"
    for caller in callers:
        await tells_locker_number(cluster, caller, speak)
    joined = [r for r in shared.records() if r.get("message") == "Joined the room"]
    assert sorted(str(r.get("room")) for r in joined) == rooms, joined
    # Each room's greeting and answer, on the host's metrics endpoint.
    assert await shared.metric("voice_agent_turns_total") >= 4
    other = await cluster.start_worker("threaded-successor")

    shared.terminate()
    terminated_at = time.monotonic()
    assert await asyncio.to_thread(shared.process.wait, 30) == 0
    await asyncio.gather(*(apologises(c, since=terminated_at, timeout_s=20) for c in callers))
    assert sorted(accepted_rooms(other)) == rooms
    for caller in callers:
        await asks_remembering(cluster, caller, speak)
        await caller.participant.leave()


async def test_no_worker_means_503_with_retry_after_and_no_dispatch_left(cluster: Cluster) -> None:
    timeout_s = 4.0
    lonely = await cluster.start_server(bot_start_timeout_s=timeout_s)
    room = f"lonely-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{lonely.url}/connect", json={"room": room}) as response:
            body: dict[str, Any] = await response.json()
            status, retry_after = response.status, response.headers.get("Retry-After")
    waited = time.monotonic() - started
    assert status == 503 and body["reason"] == "bot_start_failed", body
    assert retry_after is not None and int(retry_after) > 0
    assert waited < timeout_s + 2, f"answered after {waited:.1f}s"
    async with cluster.livekit_api() as lkapi:
        # (LiveKit gives every room a dispatch for unnamed agents; ours are named.)
        left = await lkapi.agent_dispatch.list_dispatch(room)
        assert [d for d in left if d.agent_name == AGENT_NAME] == [], left
    assert await lonely.sessions() == []


async def test_a_long_quiet_conversation_keeps_its_bot(cluster: Cluster) -> None:
    """The bot is never taken for dead while it lives.

    The server's websocket keep-alive pings every 20 s and closes a socket whose pong
    is 20 s late; the control socket must answer.
    """
    await cluster.start_worker("steady")
    caller = await connect(cluster)
    (before,) = await cluster.agents_in(caller.room)
    await asyncio.sleep(45)
    (after,) = await cluster.agents_in(caller.room)
    assert after.sid == before.sid, "the bot was replaced"
    replaced = [r for r in server(cluster).records() if "vanished" in r.get("message", "")]
    assert not [r for r in replaced if r.get("room") == caller.room], replaced
    await caller.participant.leave()
