"""Shared fixtures: engine stand-ins on free local ports, settings, test speech."""

import io
import json
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from fastapi.testclient import TestClient
from loguru import logger

from bot.logging import setup_logging
from bot.settings import Settings
from bot.tokens import ParticipantType, mint_token
from engines.backends import Responder, Synthesizer, Transcriber
from engines.chat_server import create_chat_app
from engines.chatterbox_server import create_chatterbox_app
from engines.faults import FaultPlan, RequestLog
from engines.scripted import ScriptedResponder, ScriptedTranscriber, ToneSynthesizer
from engines.serving import IDLE_CLOSE_S, ServedApp, serve
from engines.voxtral_server import create_voxtral_app
from server.main import create_app
from tests.speech import Speaker

VOXTRAL_MODEL = "mistralai/Voxtral-Mini-4B-Realtime-2602"
SECRETS = {
    "livekit_api_key": "lk-key-7f3a9c21",
    "livekit_api_secret": "lk-secret-Zq8vN2pLx4Rt6Yw-0123456789abcdef",
    "cerebras_api_key": "csk-test-9d8c7b6a5f4e3d2c1b0a",
    "voxtral_api_key": "vox-test-1a2b3c4d5e",
    "chatterbox_api_key": "cbx-test-5e4d3c2b1a",
}


@dataclass
class Engine:
    """A running stand-in, its knobs and what it received."""

    served: ServedApp
    faults: FaultPlan
    log: RequestLog
    # Its transcriber, responder or synthesizer, whose knobs a test may turn.
    backend: Any
    make_app: Callable[[], web.Application]

    @property
    def url(self) -> str:
        return self.served.url

    async def stop(self) -> None:
        """Stop listening, as a crashed engine would."""
        await self.served.close()

    async def restart(self, idle_close_s: float | None = None) -> None:
        """Serve again on the same port, with the same backend, knobs and log.

        `idle_close_s` changes how long the server keeps an idle connection open.
        """
        app = self.make_app()
        if idle_close_s is not None:
            app[IDLE_CLOSE_S] = idle_close_s
        self.served = await serve(app, self.served.host, self.served.port)


@dataclass
class Engines:
    voxtral: Engine
    chatterbox: Engine
    chat: Engine
    replies: list[str] = field(default_factory=list)
    transcripts: list[str] = field(default_factory=list)

    def settings(self, **overrides: object) -> Settings:
        """Settings pointing the bot at these stand-ins, with test secrets."""
        values: dict[str, Any] = {**self.variables(), "log_level": "DEBUG", **SECRETS}
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    def variables(self) -> dict[str, object]:
        """The engine settings that point at these stand-ins."""
        return {
            "livekit_url": "ws://127.0.0.1:7880",
            "voxtral_host": self.voxtral.served.host,
            "voxtral_port": self.voxtral.served.port,
            "voxtral_model": VOXTRAL_MODEL,
            "voxtral_timeout_ms": 1500,
            "chatterbox_host": self.chatterbox.served.host,
            "chatterbox_port": self.chatterbox.served.port,
            "chatterbox_timeout_ms": 1500,
            "cerebras_base_url": f"{self.chat.url}/v1",
            "cerebras_model": "gpt-oss-120b",
            "llm_timeout_ms": 3000,
        }


@asynccontextmanager
async def running_engines(
    transcriber: Transcriber | None = None,
    responder: Responder | None = None,
    synthesizer: Synthesizer | None = None,
) -> AsyncIterator[Engines]:
    """All three stand-ins, requiring the test API keys; scripted unless given backends."""
    replies: list[str] = ["Okay."]
    transcripts: list[str] = ["hello there"]
    started: list[Engine] = []

    async def start(app_factory: Callable, backend: object, key: str) -> Engine:
        faults, log = FaultPlan(), RequestLog()

        def make_app() -> web.Application:
            return app_factory(backend, faults=faults, log=log, api_key=SECRETS[key])

        engine = Engine(await serve(make_app()), faults, log, backend, make_app)
        started.append(engine)
        return engine

    # The scripts read these lists at request time, so tests can set them freely.
    running = Engines(
        voxtral=await start(
            create_voxtral_app,
            transcriber or ScriptedTranscriber(transcripts),
            "voxtral_api_key",
        ),
        chatterbox=await start(
            create_chatterbox_app, synthesizer or ToneSynthesizer(), "chatterbox_api_key"
        ),
        chat=await start(
            create_chat_app, responder or ScriptedResponder(replies), "cerebras_api_key"
        ),
        replies=replies,
        transcripts=transcripts,
    )
    try:
        yield running
    finally:
        for engine in started:
            await engine.served.close()


@pytest.fixture
async def engines() -> AsyncIterator[Engines]:
    """All three stand-ins with empty scripts."""
    async with running_engines() as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(scope="session")
def speak(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], bytes]:
    """Real speech from espeak-ng: 16 kHz mono PCM16 of a sentence."""
    try:
        return Speaker(tmp_path_factory.mktemp("speech"))
    except RuntimeError as e:
        pytest.fail(str(e))


def quiet_logging() -> None:
    """Warnings and errors to stderr only: Pipecat logs every frame link at debug level."""
    logger.remove()
    logger.add(sys.stderr, level="WARNING", backtrace=False, diagnose=False)


@pytest.fixture(autouse=True, scope="session")
def quiet_logs() -> None:
    quiet_logging()


STANDIN_BOT = f"{sys.executable} -m tests.standin_bot"
ADMIN_TOKEN = "admin-0123456789abcdef-token"


def livekit_token(room: str, identity: str, participant_type: ParticipantType = "user") -> str:
    """A LiveKit token for joining `room`, signed with the test keys."""
    return mint_token(
        api_key=SECRETS["livekit_api_key"],
        api_secret=SECRETS["livekit_api_secret"],
        room=room,
        identity=identity,
        participant_type=participant_type,
        ttl=timedelta(hours=1),
    ).jwt


def server_settings(**overrides: object) -> Settings:
    """Settings for the session server, running the stand-in bot, with test secrets."""
    values: dict[str, Any] = {
        "livekit_url": "ws://127.0.0.1:7880",
        "bot_command": STANDIN_BOT,
        "bot_warm_pool": 0,
        "bot_stop_grace_s": 2,
        "bot_start_timeout_s": 10,
        "rate_limit_per_minute": 100_000,
        "client_dist_dir": "/nonexistent",
        **SECRETS,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class LogCapture:
    """What the process logged, through the real redacting sink, one JSON record a line."""

    stream: io.StringIO

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines() if line.startswith("{")]


@pytest.fixture
def captured_logs() -> Iterator[LogCapture]:
    stream = io.StringIO()
    setup_logging(
        level="DEBUG",
        json_format=True,
        secrets=[*SECRETS.values(), ADMIN_TOKEN],
        log_transcripts=False,
        stream=stream,
    )
    yield LogCapture(stream)
    quiet_logging()


LOOPBACK = ("127.0.0.1", 50000)
REMOTE = ("203.0.113.7", 50000)
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

ApiFactory = Callable[..., TestClient]


@pytest.fixture
def api() -> Iterator[ApiFactory]:
    """Start the app (lifespan included) with settings overrides, as a given client."""
    with ExitStack() as stack:

        def start(client: tuple[str, int] = LOOPBACK, **overrides: object) -> TestClient:
            app = create_app(server_settings(**overrides))
            return stack.enter_context(TestClient(app, client=client))

        yield start
