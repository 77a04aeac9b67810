"""`python -m bench.first_audio`: from `POST /connect` to the bot's first audio, per backend.

For each session backend (`process`: the server's own bot processes with its warm pool;
`dispatch`: LiveKit dispatches the room to a worker host with idle processes) it runs
the real stack on loopback (livekit-server, engine stand-ins, session server, worker
host), then one call at a time: `/connect`, join as a LiveKit participant, and wait for
the first loud audio frame of the greeting. Calls are spaced so warm processes refill.
"""

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.stats import report
from bot.process_exit import exit_now
from tests.participant import Participant
from tests.stack import start_stack

REFILL_S = 4.0


def loud(pcm: bytes) -> bool:
    """Whether a frame carries sound (the greeting), not silence."""
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)
    return bool(samples.size) and float(np.sqrt(np.mean(samples**2))) > 300


async def one_call(stack: object) -> tuple[float, float]:
    """Milliseconds to the `/connect` answer and to the first greeting audio."""
    server = stack.server  # type: ignore[attr-defined]
    started = time.monotonic()
    status, body = await server.post("/connect", {})
    answered = time.monotonic()
    if status != 200:
        raise RuntimeError(f"/connect answered {status}: {body}")
    participant = Participant()
    await participant.join(body["url"], body["token"])
    deadline = time.monotonic() + 30
    first = None
    while first is None and time.monotonic() < deadline:
        first = next((at for at, pcm in participant.heard if loud(pcm)), None)
        await asyncio.sleep(0.01)
    await participant.leave()
    if first is None:
        raise RuntimeError("no greeting within 30 s")
    while any(s["room"] == body["room"] for s in await server.sessions()):
        await asyncio.sleep(0.1)
    return (answered - started) * 1000, (first - started) * 1000


async def measure(backend: str, count: int) -> None:
    """Start the stack with `backend` and print its figures."""
    with tempfile.TemporaryDirectory() as folder:
        async for stack in start_stack(Path(folder), session_backend=backend, bot_warm_pool=1):
            await asyncio.sleep(REFILL_S)
            answers, audio = [], []
            for _ in range(count):
                answer_ms, audio_ms = await one_call(stack)
                answers.append(answer_ms)
                audio.append(audio_ms)
                await asyncio.sleep(REFILL_S)
            print(report(f"{backend}: /connect answered", answers))
            print(report(f"{backend}: /connect to first bot audio", audio))


def main() -> None:
    """Measure both backends, one after the other."""
    parser = argparse.ArgumentParser(prog="python -m bench.first_audio")
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--backend", choices=["process", "dispatch"], action="append")
    args = parser.parse_args()
    from tests.conftest import quiet_logging

    quiet_logging()
    for backend in args.backend or ["process", "dispatch"]:
        asyncio.run(measure(backend, args.count))


if __name__ == "__main__":
    main()
    exit_now(0)
