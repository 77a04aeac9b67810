"""`python -m bench.burst_start`: a burst of /connects at once → each bot's first audio, and memory.

Runs the real stack on loopback (livekit-server, engine stand-ins, session server with
its own bot processes), then for each burst size asks for that many rooms at once, joins
each as a LiveKit participant and notes when the greeting's first loud frame arrives.
After the greeting every caller asks one question and hears the reply; then the memory
of each bot in a room is read from /proc/<pid>/smaps_rollup: RSS, PSS (shared pages
split between the processes sharing them: the honest per-conversation figure when bots
are forked from one fork server) and USS (pages only that bot has).

`--spawn` turns the fork server off (BOT_FORK_SERVER=false), the way bots started before.
"""

import argparse
import asyncio
import json
import os
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from bench.compare.measure import TreeMeter, cpu_seconds, descendants, memory_mb
from bench.stats import report
from bot.process_exit import exit_now
from tests.participant import Participant
from tests.speech import Speaker
from tests.stack import Stack, start_stack

RESULTS = Path(__file__).parent / "results"
SETTLE_S = 6.0


async def _until_loud(participant: Participant, since: float, timeout_s: float) -> float | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (at := participant.first_loud_at(since)) is not None:
            return at
        await asyncio.sleep(0.01)
    return None


async def _call(stack: Stack) -> tuple[Participant, float | None]:
    """/connect and join; ms from /connect to the first loud greeting frame (None: none)."""
    started = time.monotonic()
    status, body = await stack.server.post("/connect", {})
    if status != 200:
        raise RuntimeError(f"/connect answered {status}: {body}")
    participant = Participant()
    await participant.join(body["url"], body["token"])
    first = await _until_loud(participant, started, 30)
    return participant, None if first is None else (first - started) * 1000


async def burst(stack: Stack, n: int, question: bytes) -> dict[str, Any]:
    """`n` rooms at once: first-audio times, then one question each, then bot memory."""
    servers = TreeMeter([stack.server.process.pid], include_roots=True)
    sfu = TreeMeter([stack.livekit.process.pid], include_roots=True)
    me = cpu_seconds(os.getpid())
    started = time.monotonic()
    servers.start(started)
    sfu.start(started)
    starting = asyncio.gather(*(_call(stack) for _ in range(n)))
    while not starting.done():
        servers.sample()  # bots born in the window count from their first tick
        await asyncio.wait([starting], timeout=0.2)
    ended = time.monotonic()
    mine = cpu_seconds(os.getpid()) - me
    # CPU from the burst to the last first audio, in cores: what the start is made of.
    cores = {
        "bots_and_server": round(servers.stop(ended).cores, 2),
        "sfu": round(sfu.stop(ended).cores, 2),
        "bench_participants_and_engines": round(mine / (ended - started), 2),
    }
    calls = starting.result()
    first_ms = [ms for _, ms in calls]
    await asyncio.sleep(1.5)  # the greeting ends
    asked = time.monotonic()
    for participant, _ in calls:
        participant.say(question)
    replies = await asyncio.gather(
        *(_until_loud(p, asked + len(question) / 32000, 30) for p, _ in calls)
    )
    await asyncio.sleep(1.0)
    bots = [memory_mb(s["pid"]) for s in await stack.server.sessions() if s.get("pid")]
    fork_servers = [
        memory_mb(pid)
        for pid in descendants(stack.server.process.pid)
        if b"--fork-server" in _cmdline(pid)
    ]
    for participant, _ in calls:
        await participant.leave()
    return {
        "first_audio_ms": first_ms,
        "window_s": round(ended - started, 2),
        "cores_busy": cores,
        "replies_heard": sum(r is not None for r in replies),
        "bots": bots,
        "fork_server": fork_servers[0] if fork_servers else None,
    }


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _mean(rows: list[dict[str, float]], key: str) -> float | None:
    values = [r[key] for r in rows if key in r]
    return round(float(np.mean(values)), 1) if values else None


async def run(levels: list[int], warm: int, fork: bool, question: bytes) -> dict[str, Any]:
    """Start the stack with these settings and measure each burst size in turn."""
    results: dict[str, Any] = {"warm_pool": warm, "fork_server": fork, "bursts": []}
    with tempfile.TemporaryDirectory() as folder:
        async for stack in start_stack(
            Path(folder),
            bot_warm_pool=warm,
            bot_fork_server=fork,
            max_concurrent_sessions=max(levels) + 2,
            log_level="INFO",
        ):
            stack.transcriber.script = ["What time is it?"]
            await asyncio.sleep(SETTLE_S)
            # A fork keeps its fork server's command line: the bots are its children.
            standby = [memory_mb(pid) for pid in descendants(stack.server.process.pid)[1:]]
            results["standby_bots"] = standby
            print(f"standby bots: {standby}", flush=True)
            for n in levels:
                figures = await burst(stack, n, question)
                results["bursts"].append({"size": n, **figures})
                got = [ms for ms in figures["first_audio_ms"] if ms is not None]
                label = f"{'fork' if fork else 'spawn'} warm={warm} burst {n}"
                print(report(f"{label}: first bot audio", got), flush=True)
                print(
                    f"{label}: per bot RSS {_mean(figures['bots'], 'rss')} MB, "
                    f"PSS {_mean(figures['bots'], 'pss')} MB, "
                    f"USS {_mean(figures['bots'], 'uss')} MB over {len(figures['bots'])} "
                    f"bots; replies heard {figures['replies_heard']}/{n}; "
                    f"no audio {n - len(got)}; fork server {figures['fork_server']}; "
                    f"cores busy over {figures['window_s']} s: {figures['cores_busy']}",
                    flush=True,
                )
                while await stack.server.sessions():
                    await asyncio.sleep(0.2)
                await asyncio.sleep(SETTLE_S)  # the warm pool refills
    for n in sorted(set(levels)):
        if levels.count(n) > 1:
            pooled = [
                ms
                for b in results["bursts"]
                if b["size"] == n
                for ms in b["first_audio_ms"]
                if ms is not None
            ]
            print(report(f"burst {n}, all {levels.count(n)} runs: first bot audio", pooled))
    return results


def main() -> None:
    """Measure the bursts and write bench/results/<date>-burst-start.json."""
    parser = argparse.ArgumentParser(prog="python -m bench.burst_start")
    parser.add_argument(
        "--levels", default="1,5,10", help="burst sizes, comma-separated; repeat one to pool runs"
    )
    parser.add_argument("--warm", type=int, default=1, help="BOT_WARM_POOL")
    parser.add_argument("--spawn", action="store_true", help="BOT_FORK_SERVER=false")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    from tests.conftest import quiet_logging

    quiet_logging()
    with tempfile.TemporaryDirectory() as speech:
        question = Speaker(Path(speech))("What time is it?")
    levels = [int(n) for n in args.levels.split(",")]
    results = asyncio.run(run(levels, args.warm, not args.spawn, question))
    mode = "spawn" if args.spawn else "fork"
    out = args.out or RESULTS / f"{date.today()}-burst-start-{mode}-warm{args.warm}.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
    exit_now(0)
