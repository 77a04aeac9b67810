"""`python -m bench.peers.livekit_agent start`: a LiveKit Agents 1.8.9 worker on our engines.

The peer `python -m bench compare` measures us against: a voice agent as the LiveKit
Agents docs build one (`AgentSession` with its OpenAI STT/LLM/TTS plugins and Silero
VAD), pointed at our engine stand-ins' OpenAI-compatible endpoints. It registers with
the SFU under `AGENT_NAME` (explicit dispatch: it joins only rooms it is dispatched
to), greets the room's first listener once they hear it, as our bot does, then talks.

The bench hands it a JSON file (`PEER_CONFIG` names it): the configuration
(`default` or `matched`, see `bench.peers.livekit_options`) and the engines. LiveKit's
own variables (`LIVEKIT_URL`, `LIVEKIT_API_KEY`, `LIVEKIT_API_SECRET`) locate the SFU.
"""

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from livekit.agents import Agent, AgentServer, AgentSession, JobContext, JobProcess, cli
from livekit.plugins import openai, silero

from bench.peers.livekit_options import (
    AGENT_NAME,
    WORKER_IDLE_PROCESSES,
    PeerEngines,
    session_options,
    vad_options,
)

CONFIG_VARIABLE = "PEER_CONFIG"
INSTRUCTIONS = "You are a helpful voice assistant. Answer briefly."
# As our bot: wait for the listener to subscribe before greeting, at most this long.
SUBSCRIBE_WAIT_S = 3.0


def load_config() -> dict[str, Any]:
    """The bench's JSON hand-over: {"config": ..., "greeting": ..., "engines": {...}}."""
    return json.loads(Path(os.environ[CONFIG_VARIABLE]).read_text())


def prewarm(process: JobProcess) -> None:
    """Load the configuration and the VAD model before a job arrives, as the docs advise."""
    config = load_config()
    process.userdata["config"] = config
    process.userdata["vad"] = silero.VAD.load(**vad_options(config["config"]))


def build_session(config: dict[str, Any], vad: Any) -> AgentSession:
    """The session: the OpenAI plugins on our stand-ins, and the configuration's turns."""
    engines = PeerEngines(**config["engines"])
    return AgentSession(
        stt=openai.STT(
            base_url=engines.stt_base_url,
            api_key=engines.stt_api_key,
            model=engines.stt_model,
            language="en",
        ),
        llm=openai.LLM(
            base_url=engines.llm_base_url, api_key=engines.llm_api_key, model=engines.llm_model
        ),
        tts=openai.TTS(
            base_url=engines.tts_base_url, api_key=engines.tts_api_key, response_format="pcm"
        ),
        vad=vad,
        **session_options(config["config"]),
    )


async def entrypoint(ctx: JobContext) -> None:
    """One room: join, start the session, greet once the listener hears us."""
    config = ctx.proc.userdata["config"]
    session = build_session(config, ctx.proc.userdata["vad"])
    subscribed = asyncio.Event()
    ctx.room.on("local_track_subscribed", lambda *_: subscribed.set())
    await ctx.connect()
    await session.start(agent=Agent(instructions=INSTRUCTIONS), room=ctx.room)
    try:
        await asyncio.wait_for(subscribed.wait(), SUBSCRIBE_WAIT_S)
    except TimeoutError:
        pass
    session.say(config["greeting"])


def main() -> None:
    """Run the worker: `start` plus LiveKit's CLI options."""
    server = AgentServer(
        setup_fnc=prewarm,
        load_fnc=lambda: 0.0,
        num_idle_processes=WORKER_IDLE_PROCESSES,
        port=0,
    )
    server.rtc_session(entrypoint, agent_name=AGENT_NAME)
    cli.run_app(server)


if __name__ == "__main__":
    main()
