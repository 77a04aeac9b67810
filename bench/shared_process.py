"""`python -m bench shared-process`: what LiveKit's native side costs per room in one process.

Weighs "several rooms per bot process" (issue 13) before building it. For each room
count N, one process holds N bot-side participants: each publishes a track from an
`AudioSource` as the bot does (LiveKit encodes it even while nothing is captured) and
reads the other participant's audio at 16 kHz in 32 ms frames, as the bot's input
does. A second process holds the N users, each sending silence as an open microphone
does. The bot-side process's CPU is read per thread from /proc over `--seconds`: what
stays one per process (the audio-device thread, tokio) and what grows with each room
(one Opus encoder per track). No Pipecat pipeline runs, so the bot's own Python work
per room comes on top of these figures.
"""

import argparse
import asyncio
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from livekit import rtc

from bench.compare.measure import tasks_of
from bench.cost import thread_cpu, thread_name
from bench.stats import counts
from bot.process_exit import exit_now
from tests.conftest import SECRETS, livekit_token
from tests.livekit_server import LiveKitServer

SUMMARY = "LiveKit's native CPU per room when N rooms share one process"
RESULTS = Path(__file__).resolve().parent / "results"
SETTLE_S = 5.0
MIC_FRAME = rtc.AudioFrame(bytes(960), 48000, 1, 480)  # 10 ms of silence


async def _publish(room: rtc.Room, source: rtc.AudioSource) -> None:
    track = rtc.LocalAudioTrack.create_audio_track("audio", source)
    options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    await room.local_participant.publish_track(track, options)


async def _join_as_bot(url: str, name: str, tasks: set[asyncio.Task]) -> rtc.Room:
    room = rtc.Room()

    async def listen(track: rtc.Track) -> None:
        stream = rtc.AudioStream(track, sample_rate=16000, num_channels=1, frame_size_ms=32)
        async for _ in stream:
            pass

    @room.on("track_subscribed")
    def subscribed(track: rtc.Track, *_: Any) -> None:
        tasks.add(asyncio.create_task(listen(track)))

    await room.connect(url, livekit_token(name, "agent", "agent"))
    await _publish(room, rtc.AudioSource(24000, 1))
    return room


async def _join_as_user(url: str, name: str, tasks: set[asyncio.Task]) -> rtc.Room:
    room = rtc.Room()
    await room.connect(url, livekit_token(name, "user"))
    source = rtc.AudioSource(48000, 1)
    await _publish(room, source)

    async def speak_silence() -> None:
        while True:
            await source.capture_frame(MIC_FRAME)

    tasks.add(asyncio.create_task(speak_silence()))
    return room


async def _serve(role: str, url: str, rooms: int, seconds: float) -> None:
    """One side's participants; the bot side prints its per-thread CPU as JSON."""
    tasks: set[asyncio.Task] = set()
    join = _join_as_bot if role == "bot" else _join_as_user
    joined = [await join(url, f"shared-{i}", tasks) for i in range(rooms)]
    try:
        if role == "user":
            await asyncio.sleep(seconds + 2 * SETTLE_S + 30)
            return
        await asyncio.sleep(SETTLE_S)
        pid = os.getpid()
        before, started = thread_cpu(pid), time.monotonic()
        await asyncio.sleep(seconds)
        after, elapsed = thread_cpu(pid), time.monotonic() - started
        threads = Counter(thread_name(pid, task) for task in tasks_of(pid))
        pct = {name: 100 * (after[name] - before.get(name, 0.0)) / elapsed for name in after}
        print(json.dumps({"cpu_pct": pct, "threads": dict(threads)}))
    finally:
        for task in tasks:
            task.cancel()
        for room in joined:
            await room.disconnect()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's options."""
    parser.add_argument("--rooms", type=counts, default=counts("1,3,6"), help="room counts")
    parser.add_argument("--seconds", type=float, default=20, help="CPU reading per count")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--date", default=datetime.date.today().isoformat())


async def _measure(rooms: list[int], seconds: float) -> dict[int, dict[str, Any]]:
    child = [sys.executable, "-m", "bench.shared_process"]
    out: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="shared-process-") as folder:
        livekit = await LiveKitServer.start(
            Path(folder), SECRETS["livekit_api_key"], SECRETS["livekit_api_secret"]
        )
        try:
            for n in rooms:
                args = [livekit.url, str(n), str(seconds)]
                users = subprocess.Popen([*child, "user", *args])
                try:
                    bots = await asyncio.to_thread(
                        subprocess.run, [*child, "bot", *args], capture_output=True, text=True
                    )
                finally:
                    users.kill()
                    users.wait()
                if bots.returncode != 0:
                    failure = bots.stderr[-2000:]
                    raise RuntimeError(f"the bot side failed with {n} rooms:\n{failure}")
                out[n] = json.loads(bots.stdout.strip().splitlines()[-1])
        finally:
            livekit.stop()
    return out


def run(args: argparse.Namespace) -> int:
    """Measure each room count, print per-room and marginal CPU, write the JSON."""
    rooms: list[int] = args.rooms
    by_count = asyncio.run(_measure(rooms, args.seconds))
    totals = {n: sum(figures["cpu_pct"].values()) for n, figures in by_count.items()}
    first = rooms[0]
    for n in rooms:
        total = totals[n]
        line = f"{n} rooms in one process: {total:.1f} % of a core, {total / n:.1f} % a room"
        if n > first:
            extra = (total - totals[first]) / (n - first)
            line += f", {extra:.1f} % for each room past {first}"
        print(line)
        top = sorted(by_count[n]["cpu_pct"].items(), key=lambda kv: -kv[1])[:7]
        threads = by_count[n]["threads"]
        print("   " + ", ".join(f"{name} {pct:.1f} ({threads.get(name, 0)})" for name, pct in top))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{args.date}-shared-process.json"
    path.write_text(json.dumps({"seconds": args.seconds, "by_rooms": by_count}, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    role, url, rooms, seconds = sys.argv[1:5]
    asyncio.run(_serve(role, url, int(rooms), float(seconds)))
    exit_now(0)
