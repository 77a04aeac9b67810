"""The whole stack for end-to-end and browser tests, started by the project's own code.

A real livekit-server on free local ports, the engine stand-ins in this process (so a
test can script them, break them and read what they received), and the real session
server as a child process that spawns real bots.
"""

import shutil
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engines.backends import Responder, Synthesizer, Transcriber
from engines.scripted import ScriptedResponder, ScriptedTranscriptionStream, ToneSynthesizer
from tests.conftest import ADMIN_TOKEN, SECRETS, Engines, running_engines
from tests.livekit_server import LiveKitServer
from tests.session_server import SessionServer
from tests.worker_host import WorkerHost

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
GREETING = "Welcome aboard."


class RoutedTranscriber:
    """The STT stand-in's script: the next transcript, or one chosen by utterance length.

    Choosing by length lets two rooms talk at once and still get different answers.
    """

    def __init__(self) -> None:
        self.script: list[str] = []
        self.by_length: tuple[float, str, str] | None = None

    def open_stream(self) -> Any:
        if self.by_length is not None:
            return _LengthStream(*self.by_length)
        text = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        return ScriptedTranscriptionStream(text, seconds_per_word=0.25)


@dataclass
class _LengthStream:
    threshold_s: float
    short: str
    long: str
    received: int = 0

    async def feed(self, pcm: bytes) -> str:
        self.received += len(pcm)
        return ""

    async def finish(self) -> str:
        return self.short if self.received / 32000 < self.threshold_s else self.long


@dataclass
class Backends:
    """What the engine stand-ins run: scripts, or real models."""

    transcriber: Transcriber
    responder: Responder
    synthesizer: Synthesizer


@dataclass
class Stack:
    livekit: LiveKitServer
    engines: Engines
    server: SessionServer
    transcriber: RoutedTranscriber
    replies: dict[str, str] = field(default_factory=dict)
    reply_queue: list[str] = field(default_factory=list)
    workers: list[WorkerHost] = field(default_factory=list)

    def records(self) -> list[dict[str, Any]]:
        """The log records of the server and the worker hosts (where dispatched bots log)."""
        return self.server.records() + [r for w in self.workers for r in w.records()]

    async def metric(self, name: str, **labels: str) -> float:
        """A metric summed over the server and the worker hosts (where dispatched bots count)."""
        values = [await w.metric(name, **labels) for w in self.workers]
        return await self.server.metric(name, **labels) + sum(values)

    def log_text(self) -> str:
        """Every log line of the run."""
        return self.server.log_text() + "".join(w.log_path.read_text() for w in self.workers)


def respond(stack_replies: dict[str, str], queue: list[str]) -> Callable[[str], str]:
    """Answer a question containing a key with its reply, else the next queued reply."""

    def reply(question: str) -> str:
        for key, answer in stack_replies.items():
            if key in question:
                return answer
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return reply


async def start_stack(
    folder: Path,
    backends: Backends | None = None,
    session_backend: str = "process",
    **overrides: object,
) -> AsyncGenerator[Stack, None]:
    """Start everything; stop it all when the caller is done.

    The engines are the scripted stand-ins unless `backends` (real models) are given.
    With `session_backend="dispatch"` the server dispatches rooms to one worker host.
    """
    transcriber = RoutedTranscriber()
    replies: dict[str, str] = {}
    queue: list[str] = ["Okay."]
    chosen = backends or Backends(
        transcriber, ScriptedResponder(respond(replies, queue)), ToneSynthesizer()
    )
    livekit = await LiveKitServer.start(
        folder, SECRETS["livekit_api_key"], SECRETS["livekit_api_secret"]
    )
    try:
        async with running_engines(
            transcriber=chosen.transcriber,
            responder=chosen.responder,
            synthesizer=chosen.synthesizer,
        ) as engines:
            settings = {
                **engines.variables(),
                **SECRETS,
                "livekit_url": livekit.url,
                "greeting": GREETING,
                "log_level": "DEBUG",
                "bot_idle_timeout_s": 60,
                "bot_start_timeout_s": 30,
                "max_concurrent_sessions": 4,
                "session_backend": session_backend,
                "agent_name": "voice-agent-test",
                # Teardown stops the server (and worker); a test that failed
                # mid-conversation must not hold it for the default drain.
                "drain_timeout_s": 2,
                **overrides,
            }
            workers = []
            if session_backend == "dispatch":
                workers.append(await WorkerHost.start(folder, settings, "worker"))
            server = await SessionServer.start(folder, settings, ADMIN_TOKEN)
            try:
                yield Stack(livekit, engines, server, transcriber, replies, queue, workers)
            finally:
                server.stop()
                for worker in workers:
                    worker.stop()
    finally:
        livekit.stop()
        keep_artifacts(folder)


def keep_artifacts(folder: Path) -> None:
    """Copy the run's logs where CI keeps artifacts."""
    target = ARTIFACTS / "logs" / folder.name
    target.mkdir(parents=True, exist_ok=True)
    for log in folder.glob("*.log"):
        shutil.copy(log, target / log.name)
