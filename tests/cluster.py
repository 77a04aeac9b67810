"""A scaled-out stack on loopback: Redis, livekit-server nodes sharing it, worker hosts.

Everything is a real process except the engine stand-ins, which run in the test's
process so tests can script them and read what they received.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from livekit import api

from engines.scripted import ScriptedResponder, ToneSynthesizer
from tests.conftest import ADMIN_TOKEN, SECRETS, Engines, running_engines
from tests.livekit_server import LiveKitServer
from tests.redis_server import RedisServer
from tests.session_server import SessionServer
from tests.stack import GREETING, RoutedTranscriber, keep_artifacts, respond
from tests.worker_host import WorkerHost

AGENT_NAME = "voice-agent-test"


@dataclass
class Cluster:
    folder: Path
    redis: RedisServer
    nodes: list[LiveKitServer]
    engines: Engines
    transcriber: RoutedTranscriber
    settings: dict[str, object]
    replies: dict[str, str] = field(default_factory=dict)
    reply_queue: list[str] = field(default_factory=list)
    workers: list[WorkerHost] = field(default_factory=list)
    servers: list[SessionServer] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return self.nodes[0].url.replace("ws://", "http://")

    def livekit_api(self) -> api.LiveKitAPI:
        return api.LiveKitAPI(
            self.api_url, SECRETS["livekit_api_key"], SECRETS["livekit_api_secret"]
        )

    async def start_worker(self, name: str, node: int = 0, **overrides: object) -> WorkerHost:
        """A worker host registered with node `node`, once it has registered."""
        settings = {**self.settings, "livekit_url": self.nodes[node].url, **overrides}
        worker = await WorkerHost.start(self.folder, settings, name)
        self.workers.append(worker)
        return worker

    async def start_server(self, **overrides: object) -> SessionServer:
        """A session server dispatching rooms to the worker hosts (its API on node 0)."""
        settings = {**self.settings, "session_backend": "dispatch", **overrides}
        name = f"server-{len(self.servers)}"
        server = await SessionServer.start(self.folder, settings, ADMIN_TOKEN, name)
        self.servers.append(server)
        return server

    async def agents_in(self, room: str) -> list[api.ParticipantInfo]:
        """The agent participants the SFU lists in `room`."""
        async with self.livekit_api() as lkapi:
            listed = await lkapi.room.list_participants(api.ListParticipantsRequest(room=room))
        return [p for p in listed.participants if p.kind == api.ParticipantInfo.Kind.AGENT]


@asynccontextmanager
async def running_cluster(
    folder: Path, nodes: int = 1, **overrides: object
) -> AsyncIterator[Cluster]:
    """Redis, `nodes` livekit-server nodes on it, the engine stand-ins; no worker yet."""
    transcriber = RoutedTranscriber()
    transcriber.script[:] = ["hello there"]
    replies: dict[str, str] = {}
    queue: list[str] = ["Okay."]
    redis = await RedisServer.start(folder)
    started: list[LiveKitServer] = []
    try:
        for i in range(nodes):
            started.append(
                await LiveKitServer.start(
                    folder,
                    SECRETS["livekit_api_key"],
                    SECRETS["livekit_api_secret"],
                    redis=redis.address,
                    name=f"livekit-{i}",
                )
            )
        async with running_engines(
            transcriber=transcriber,
            responder=ScriptedResponder(respond(replies, queue)),
            synthesizer=ToneSynthesizer(),
        ) as engines:
            settings = {
                **engines.variables(),
                **SECRETS,
                "livekit_url": started[0].url,
                "redis_url": redis.url,
                "agent_name": AGENT_NAME,
                "greeting": GREETING,
                "log_level": "DEBUG",
                "bot_idle_timeout_s": 60,
                "bot_start_timeout_s": 30,
                "drain_timeout_s": 30,
                "max_concurrent_sessions": 8,
                # A bot's engine deadlines run on its own loop: with six pipelines starting
                # at once on two busy cores, a job process went unscheduled for 2.2 s of the
                # 2.45 s its greeting's speech took, and the 1.5 s default dropped the greeting.
                "chatterbox_timeout_ms": 8000,
                "voxtral_timeout_ms": 8000,
                **overrides,
            }
            cluster = Cluster(
                folder, redis, started, engines, transcriber, settings, replies, queue
            )
            try:
                yield cluster
            finally:
                for server in cluster.servers:
                    server.stop()
                await asyncio.gather(*(asyncio.to_thread(w.stop) for w in cluster.workers))
    finally:
        for node in started:
            node.stop()
        redis.stop()
        keep_artifacts(folder)
