"""Worker hosts (`python -m bot worker`) taking rooms from LiveKit's agent dispatch.

Real livekit-server nodes sharing a real Redis, real worker hosts each in its own
process group, LiveKit participants speaking espeak-ng speech; rooms are dispatched
with the SFU's API, as the session server does.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from livekit import api

from engines import tone
from tests.cluster import AGENT_NAME, Cluster, running_cluster
from tests.participant import Participant
from tests.stack import GREETING
from tests.test_e2e_livekit import Caller, ask
from tests.waiting import until

pytestmark = [pytest.mark.scale, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    async with running_cluster(tmp_path_factory.mktemp("workers"), nodes=2) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module", autouse=True)
async def own_workers(cluster: Cluster) -> AsyncIterator[None]:
    """Each test starts the workers it needs; they are gone before the next test."""
    yield
    await asyncio.gather(*(asyncio.to_thread(w.stop) for w in cluster.workers))
    cluster.workers.clear()


async def dispatch(cluster: Cluster, room: str) -> api.AgentDispatch:
    async with cluster.livekit_api() as lkapi:
        return await lkapi.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name=AGENT_NAME, room=room)
        )


async def call(cluster: Cluster, room: str | None = None, node: int = 0) -> Caller:
    """Dispatch a bot to a new room, join it and wait for the greeting."""
    room = room or f"room-{uuid.uuid4().hex[:8]}"
    await dispatch(cluster, room)
    participant = Participant()
    await participant.join(cluster.nodes[node].url, cluster.user_token(room, "caller"))
    caller = Caller(participant, room, "caller")
    await until(lambda: caller.heard() == tone.code(GREETING), 30, f"the greeting in {room}")
    return caller


def accepted_rooms(worker: object) -> list[str]:
    return [r["room"] for r in worker.records() if r.get("message") == "Accepted a room"]  # type: ignore[attr-defined]


async def test_killing_a_worker_hosts_group_leaves_no_job_process(
    cluster: Cluster, speak: Callable[[str], bytes]
) -> None:
    worker = await cluster.start_worker("doomed")
    caller = await call(cluster)
    assert len(worker.group_pids()) >= 3, "host, fork server and at least the job process"
    await ask(caller, speak("Are you there?"), "Okay.")
    worker.kill_group()
    await until(
        lambda: not worker.group_pids(), 5, lambda: f"no process left: {worker.group_pids()}"
    )
    cluster.workers.remove(worker)
    await caller.participant.leave()


async def test_sigterm_drains_the_worker_and_new_rooms_go_elsewhere(
    cluster: Cluster, speak: Callable[[str], bytes], tmp_path: Path
) -> None:
    draining = await cluster.start_worker("draining")
    caller = await call(cluster)
    assert accepted_rooms(draining) == [caller.room]
    other = await cluster.start_worker("other")

    draining.terminate()
    await until(
        lambda: any("Draining" in r.get("message", "") for r in draining.records()),
        10,
        "the worker to start draining",
    )
    # The conversation in progress goes on.
    cluster.reply_queue[:] = ["Still here."]
    await ask(caller, speak("Are you still there?"), "Still here.")
    # A new room goes to the other worker.
    newcomer = await call(cluster)
    assert accepted_rooms(other) == [newcomer.room]
    assert draining.process.poll() is None, "the drained worker waits for its conversation"

    left_at = time.monotonic()
    await caller.participant.leave()
    code = await asyncio.to_thread(draining.process.wait, 30)
    assert code == 0
    print(f"\ndrained worker exited {time.monotonic() - left_at:.2f} s after the last caller left")
    # Its fork server and resource tracker follow it out.
    await until(lambda: not draining.group_pids(), 5, lambda: f"none left: {draining.group_pids()}")
    await newcomer.participant.leave()


async def test_six_rooms_at_once_over_two_nodes_and_two_workers(
    cluster: Cluster, speak: Callable[[str], bytes]
) -> None:
    second_node = len(cluster.nodes) - 1
    # A request being answered counts as a job; with no job running, a worker answers
    # at most WORKER_IDLE_PROCESSES requests at once, so two workers of three absorb six.
    workers = [
        await cluster.start_worker("spread-a", node=0, worker_idle_processes=3),
        await cluster.start_worker("spread-b", node=second_node, worker_idle_processes=3),
    ]
    started = time.monotonic()
    callers = await asyncio.gather(*(call(cluster, node=i % 2 * second_node) for i in range(6)))
    print(f"\nsix greetings heard {time.monotonic() - started:.2f} s after six dispatches")
    cluster.reply_queue[:] = ["Okay."]
    await asyncio.gather(*(ask(c, speak("How are you?"), "Okay.") for c in callers))
    for caller in callers:
        assert len(await cluster.agents_in(caller.room)) == 1, caller.room
    taken = [accepted_rooms(w) for w in workers]
    print(f"jobs per worker: {[len(rooms) for rooms in taken]}")
    assert sorted(sum(taken, [])) == sorted(c.room for c in callers), "one job per room"
    assert all(taken), "both workers took rooms"
    await asyncio.gather(*(c.participant.leave() for c in callers))
