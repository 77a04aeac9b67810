"""The systems compared, each behind one face: open a room that it serves.

Ours runs as the session server spawning one bot per room, once with realtime STT
(`VOXTRAL_MODE=realtime`, our default: audio streams to Voxtral while the user speaks)
and once with HTTP STT (`segmented`: one upload per utterance, as the peer does). The
peer runs as a LiveKit Agents worker per configuration. All share one livekit-server
and one set of engine stand-ins.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.compare.peer import PeerWorker
from tests.conftest import ADMIN_TOKEN, SECRETS
from tests.session_server import SessionServer
from tests.stack import GREETING, Stack, start_stack

# (livekit url, room, listener token)
RoomTicket = tuple[str, str, str]

OURS_REALTIME = "ours (realtime STT)"
OURS_HTTP = "ours (HTTP STT)"
THEIRS_MATCHED = "LiveKit Agents (matched)"
THEIRS_DEFAULT = "LiveKit Agents (default)"
SYSTEMS = (OURS_REALTIME, OURS_HTTP, THEIRS_MATCHED, THEIRS_DEFAULT)
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
    """Everything running: the shared stack and the four systems."""

    stack: Stack
    systems: list[System]


@asynccontextmanager
async def running(folder: Path, max_rooms: int) -> AsyncIterator[Bench]:
    """Start the stack, our second session server and the two peer workers."""
    ours = {
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
            "voxtral_mode": "segmented",
        }
        (folder / "http").mkdir(exist_ok=True)
        http_server = await SessionServer.start(folder / "http", settings, ADMIN_TOKEN)
        peers: list[PeerWorker] = []
        try:
            started = await asyncio.gather(
                *(
                    PeerWorker.start(folder, config, stack.livekit, stack.engines, GREETING)
                    for config in ("matched", "default")
                ),
                return_exceptions=True,
            )
            peers = [p for p in started if isinstance(p, PeerWorker)]
            failed = [p for p in started if isinstance(p, BaseException)]
            if failed:
                raise failed[0]
            matched, default = peers
            yield Bench(
                stack,
                [
                    System(OURS_REALTIME, _connect(stack.server), stack.server.process.pid),
                    System(OURS_HTTP, _connect(http_server), http_server.process.pid),
                    System(THEIRS_MATCHED, matched.open_room, matched.process.pid),
                    System(THEIRS_DEFAULT, default.open_room, default.process.pid),
                ],
            )
        finally:
            for peer in peers:
                peer.stop()
            http_server.stop()
