"""The LiveKit Agents peer as a process beside our stack, and rooms it is dispatched to."""

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

from livekit import api

from bench.peers.livekit_agent import CONFIG_VARIABLE
from bench.peers.livekit_options import AGENT_NAME, PeerConfig, PeerEngines
from bot.tokens import mint_token
from tests.conftest import SECRETS, VOXTRAL_MODEL, Engines
from tests.livekit_server import LiveKitServer

ROOT = Path(__file__).resolve().parent.parent.parent
REGISTER_TIMEOUT_S = 60.0
LISTENER_TOKEN_TTL = timedelta(hours=1)


def peer_engines(engines: Engines) -> PeerEngines:
    """Our stand-ins' OpenAI-compatible endpoints, as the peer's plugins take them."""
    return PeerEngines(
        stt_base_url=f"{engines.voxtral.url}/v1",
        stt_api_key=SECRETS["voxtral_api_key"],
        stt_model=VOXTRAL_MODEL,
        llm_base_url=f"{engines.chat.url}/v1",
        llm_api_key=SECRETS["cerebras_api_key"],
        llm_model="gpt-oss-120b",
        tts_base_url=f"{engines.chatterbox.url}/v1",
        tts_api_key=SECRETS["chatterbox_api_key"],
    )


@dataclass
class PeerWorker:
    """`python -m bench.peers.livekit_agent start`, registered with our livekit-server."""

    config: PeerConfig
    process: subprocess.Popen
    livekit: LiveKitServer
    log_path: Path

    @classmethod
    async def start(
        cls,
        folder: Path,
        config: PeerConfig,
        livekit: LiveKitServer,
        engines: Engines,
        greeting: str,
    ) -> "PeerWorker":
        """Start the worker and wait until it has registered (its log says so)."""
        folder.mkdir(parents=True, exist_ok=True)
        hand_over = folder / f"peer-{config}.json"
        hand_over.write_text(
            json.dumps(
                {"config": config, "greeting": greeting, "engines": asdict(peer_engines(engines))}
            )
        )
        hand_over.chmod(0o600)
        env = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/tmp"),
            CONFIG_VARIABLE: str(hand_over),
            "LIVEKIT_URL": livekit.url,
            "LIVEKIT_API_KEY": SECRETS["livekit_api_key"],
            "LIVEKIT_API_SECRET": SECRETS["livekit_api_secret"],
        }
        log_path = folder / f"peer-{config}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.peers.livekit_agent", "start"],
            env=env,
            cwd=ROOT,
            stdout=log_path.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        worker = cls(config, process, livekit, log_path)
        deadline = time.monotonic() + REGISTER_TIMEOUT_S
        while "registered worker" not in log_path.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        else:
            return worker
        worker.stop()
        raise RuntimeError(f"the peer did not register:\n{log_path.read_text()[-3000:]}")

    async def open_room(self) -> tuple[str, str, str]:
        """Dispatch the peer to a fresh room; return (url, room, a listener's token)."""
        room = f"peer-{self.config}-{uuid.uuid4().hex[:8]}"
        async with api.LiveKitAPI(
            self.livekit.url.replace("ws://", "http://"),
            SECRETS["livekit_api_key"],
            SECRETS["livekit_api_secret"],
        ) as lk:
            await lk.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name=AGENT_NAME, room=room)
            )
        token = mint_token(
            api_key=SECRETS["livekit_api_key"],
            api_secret=SECRETS["livekit_api_secret"],
            room=room,
            identity=f"listener-{uuid.uuid4().hex[:6]}",
            participant_type="user",
            ttl=LISTENER_TOKEN_TTL,
        )
        return self.livekit.url, room, token.jwt

    def pids(self) -> list[int]:
        """The worker and every process under it (its job processes)."""
        return [self.process.pid]

    def stop(self) -> None:
        """SIGTERM the worker's process group, then SIGKILL if it lingers."""
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, 15)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait()
