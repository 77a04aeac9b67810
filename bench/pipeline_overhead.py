"""`python -m bench.pipeline_overhead`: what our pipeline adds between the engines.

Runs the real pipeline (Silero VAD, our services, chunker, metrics observer) on the test
transport at real-time pace, against the engine stand-ins with no latency, and reads
the `Turn metrics` records it logs:

- overhead: `e2e_first_audio_ms - llm_ttft_ms - tts_first_audio_latency_ms`, the time
  from the turn's end to the first audio frame that is neither engine's (target p95 25 ms);
- barge-in: `barge_in_cutoff_ms - VAD_START_SECS`, from VAD detecting the user's speech
  over the bot to the bot's playback halted (target p95 30 ms).
"""

import argparse
import asyncio
import io
import json

import aiohttp
from pipecat.workers.runner import WorkerRunner

from bench.speech import speech
from bench.stats import report
from bot.logging import setup_logging
from bot.pipeline import build_worker
from tests.conftest import SECRETS, Engines, quiet_logging, running_engines
from tests.fake_transport import FakeTransport

OVERHEAD_TARGET_MS = 25.0
BARGE_IN_TARGET_MS = 30.0
LONG_REPLY = " ".join("amber basil cedar dahlia ember fennel garnet hazel".split() * 5)


def records(logs: io.StringIO) -> list[dict]:
    """The Turn metrics records logged so far, user turns only."""
    out = []
    for line in logs.getvalue().splitlines():
        record = json.loads(line)
        if record.get("event") == "Turn metrics" and record.get("endpointer_latency_ms"):
            out.append(record)
    return out


async def more_records(logs: io.StringIO, than: int, interrupted: bool = False) -> None:
    """Wait (30 s at most) until more than `than` matching records were logged."""

    def count() -> int:
        return len([r for r in records(logs) if not interrupted or r["barge_in_cutoff_ms"]])

    async with asyncio.timeout(30):
        while count() <= than:
            await asyncio.sleep(0.05)


async def measure(turns: int, barge_ins: int) -> tuple[list[float], list[float]]:
    """Run the turns and the barge-ins; return the two series in milliseconds."""
    question, interruption = speech("What time is it?"), speech("Stop please.")
    async with running_engines() as engines, aiohttp.ClientSession() as http:
        logs = io.StringIO()
        settings = engines.settings(log_level="INFO")
        redactor = setup_logging(
            level="INFO",
            json_format=True,
            secrets=list(SECRETS.values()),
            log_transcripts=False,
            stream=logs,
            room="bench",
        )
        transport = FakeTransport()
        worker = build_worker(
            transport=transport, settings=settings, http=http, room="bench", redactor=redactor
        )
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        running = asyncio.create_task(runner.run())
        try:
            overhead = await plain_turns(engines, transport, logs, question, turns)
            cutoffs = await interrupted_turns(
                engines, transport, logs, question, interruption, barge_ins
            )
        finally:
            await worker.cancel()
            await asyncio.wait_for(running, 10)
            quiet_logging()
    vad_start_ms = settings.vad_start_secs * 1000
    return overhead, [cutoff - vad_start_ms for cutoff in cutoffs]


async def plain_turns(
    engines: Engines, transport: FakeTransport, logs: io.StringIO, question: bytes, turns: int
) -> list[float]:
    """Question, answer, silence, repeated."""
    engines.transcripts[:] = ["what time is it"]
    engines.replies[:] = ["It is half past ten."]
    for _ in range(turns):
        seen = len(records(logs))
        transport.microphone.say(question + bytes(32000))
        await more_records(logs, seen)
    return [
        r["e2e_first_audio_ms"] - r["llm_ttft_ms"] - r["tts_first_audio_latency_ms"]
        for r in records(logs)
    ]


async def interrupted_turns(
    engines: Engines,
    transport: FakeTransport,
    logs: io.StringIO,
    question: bytes,
    interruption: bytes,
    count: int,
) -> list[float]:
    """A long spoken reply, talked over after a second."""
    engines.replies[:] = [LONG_REPLY]
    engines.chatterbox.backend.realtime_factor = 1.0  # type: ignore[attr-defined]
    for _ in range(count):
        seen = len([r for r in records(logs) if r["barge_in_cutoff_ms"] is not None])
        transport.microphone.say(question + bytes(int(1.6 * 32000)) + interruption)
        await more_records(logs, seen, interrupted=True)
        await asyncio.sleep(2.0)
    return [r["barge_in_cutoff_ms"] for r in records(logs) if r["barge_in_cutoff_ms"] is not None]


def main() -> None:
    """Measure and print p50/p95 with ratios to the targets."""
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline_overhead")
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--barge-ins", type=int, default=10)
    args = parser.parse_args()
    overhead, barge_in = asyncio.run(measure(args.turns, args.barge_ins))
    print(report("pipeline overhead, turn end to first audio", overhead, OVERHEAD_TARGET_MS))
    print(report("barge-in, VAD detection to playback halted", barge_in, BARGE_IN_TARGET_MS))


if __name__ == "__main__":
    main()
