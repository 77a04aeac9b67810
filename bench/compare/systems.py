"""The systems compared, each behind one face: open a room that it serves.

Ours runs as the session server spawning one bot per room, once with realtime STT
(`VOXTRAL_MODE=realtime`, our default: audio streams to Voxtral while the user speaks)
and once with HTTP STT (`segmented`: one upload per utterance, as the peer does). A
third configuration of ours, measured for cost only (concurrency and burst), runs the
rooms in threads of one worker host (`SESSION_BACKEND=dispatch`,
`WORKER_JOB_EXECUTOR=thread`, realtime STT). The peer runs as a LiveKit Agents worker
per configuration. All share one livekit-server and one set of engine stand-ins.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp

from bench.compare.peer import PeerWorker
from bench.peers.livekit_options import PeerConfig
from tests.conftest import ADMIN_TOKEN, SECRETS
from tests.session_server import SessionServer
from tests.stack import GREETING, Stack, start_stack
from tests.worker_host import WorkerHost

# (livekit url, room, listener token)
RoomTicket = tuple[str, str, str]

OURS_REALTIME = "ours (realtime STT)"
OURS_HTTP = "ours (HTTP STT)"
THEIRS_MATCHED = "LiveKit Agents (matched)"
THEIRS_DEFAULT = "LiveKit Agents (default)"
OURS_SHARED = "ours (rooms in one process)"
# The systems every scenario runs on; COST_SYSTEMS adds those only concurrency and
# burst run on (the same pipeline as another system, served differently).
SYSTEMS = (OURS_REALTIME, OURS_HTTP, THEIRS_MATCHED, THEIRS_DEFAULT)
COST_SYSTEMS = (*SYSTEMS, OURS_SHARED)
SHARED_AGENT_NAME = "voice-agent-shared"
# Both sides keep this many processes ready for the next room (the burst figures
# used BOT_WARM_POOL=2; LiveKit's production default on 2 cores is 2 idle processes).
WARM = 2


@dataclass
class System:
    """One compared system."""

    name: str
    open_room: Callable[[], Awaitable[RoomTicket]]
    # The process whose descendants serve the rooms (bots, or job processes).
    root_pid: int
    # The rooms run in `root_pid` itself (threads), not in processes under it.
    rooms_in_root: bool = False

    @property
    def cost_only(self) -> bool:
        """Measured in the concurrency and burst scenarios only."""
        return self.name not in SYSTEMS


def _connect(server: SessionServer) -> Callable[[], Awaitable[RoomTicket]]:
    async def open_room() -> RoomTicket:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{server.url}/connect", json={}) as response:
                response.raise_for_status()
                body = await response.json()
        return body["url"], body["room"], body["token"]

    return open_room


@dataclass
class Bench:
    """Everything running: the shared stack and the systems chosen."""

    stack: Stack
    systems: list[System]

    @property
    def latency_systems(self) -> list[System]:
        """The systems the latency, barge-in and turn-taking scenarios run on."""
        return [s for s in self.systems if not s.cost_only]


@asynccontextmanager
async def running(folder: Path, max_rooms: int, names: Collection[str]) -> AsyncIterator[Bench]:
    """Start the stack and the systems in `names` (ours realtime runs on the stack's server)."""
    ours: dict[str, Any] = {
        "log_level": "INFO",
        "bot_warm_pool": WARM,
        "max_concurrent_sessions": max_rooms + WARM,
        "bot_idle_timeout_s": 60,
    }
    async for stack in start_stack(folder, None, **ours, voxtral_mode="realtime"):
        settings = {
            **stack.engines.variables(),
            **SECRETS,
            "livekit_url": stack.livekit.url,
            "greeting": GREETING,
            "bot_start_timeout_s": 30,
            "drain_timeout_s": 2,
            **ours,
        }
        async with AsyncExitStack() as started:
            starts: dict[str, Callable[[], AbstractAsyncContextManager[System]]] = {
                OURS_HTTP: partial(_ours_http, folder, settings),
                OURS_SHARED: partial(_ours_shared, folder, settings, max_rooms),
                THEIRS_MATCHED: partial(_peer, folder, "matched", stack),
                THEIRS_DEFAULT: partial(_peer, folder, "default", stack),
            }
            chosen = [name for name in starts if name in names]
            entered = await asyncio.gather(
                *(started.enter_async_context(starts[name]()) for name in chosen),
                return_exceptions=True,
            )
            failed = [e for e in entered if isinstance(e, BaseException)]
            if failed:
                raise failed[0]
            systems = {n: s for n, s in zip(chosen, entered, strict=True) if isinstance(s, System)}
            if OURS_REALTIME in names:
                systems[OURS_REALTIME] = System(
                    OURS_REALTIME, _connect(stack.server), stack.server.process.pid
                )
            yield Bench(stack, [systems[n] for n in COST_SYSTEMS if n in systems])


@asynccontextmanager
async def _ours_http(folder: Path, settings: dict[str, object]) -> AsyncIterator[System]:
    (folder / "http").mkdir(exist_ok=True)
    server = await SessionServer.start(
        folder / "http", {**settings, "voxtral_mode": "segmented"}, ADMIN_TOKEN
    )
    try:
        yield System(OURS_HTTP, _connect(server), server.process.pid)
    finally:
        server.stop()


@asynccontextmanager
async def _ours_shared(
    folder: Path, settings: dict[str, object], max_rooms: int
) -> AsyncIterator[System]:
    """A session server dispatching every room to one worker host that runs them in threads."""
    shared = {
        **settings,
        "voxtral_mode": "realtime",
        "session_backend": "dispatch",
        "agent_name": SHARED_AGENT_NAME,
        "worker_job_executor": "thread",
        "worker_idle_processes": WARM,
        "max_jobs_per_worker": max_rooms + WARM,
    }
    worker = await WorkerHost.start(folder, shared, "shared-worker")
    try:
        server = await SessionServer.start(folder, shared, ADMIN_TOKEN, "shared-server")
        try:
            yield System(OURS_SHARED, _connect(server), worker.pid, rooms_in_root=True)
        finally:
            server.stop()
    finally:
        worker.stop()


@asynccontextmanager
async def _peer(folder: Path, config: PeerConfig, stack: Stack) -> AsyncIterator[System]:
    peer = await PeerWorker.start(folder, config, stack.livekit, stack.engines, GREETING)
    try:
        name = THEIRS_MATCHED if config == "matched" else THEIRS_DEFAULT
        yield System(name, peer.open_room, peer.process.pid)
    finally:
        peer.stop()
