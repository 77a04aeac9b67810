"""`python -m bench.connect_latency`: how long `POST /connect` takes to answer.

Runs the real session server (`python -m server`) on a free local port. The bot command
is `true`, so every call really forks and execs a child and the slot frees at once; what
is measured is the server's own path (validation, bookkeeping, spawn, token), which is
what the client waits for before it joins the room in parallel with the bot.
"""

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

import httpx

from bench.stats import report

TARGET_P95_MS = 50.0


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def measure(base: str, count: int, concurrency: int) -> list[float]:
    """Latencies of `count` calls, `concurrency` at a time."""
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:

        async def one() -> None:
            async with gate:
                start = time.perf_counter()
                response = await client.post("/connect", json={})
                latencies.append((time.perf_counter() - start) * 1000)
                response.raise_for_status()

        await asyncio.gather(*(one() for _ in range(count)))
    return latencies


def main() -> None:
    """Start the server, measure sequential and concurrent calls, print p50/p95."""
    parser = argparse.ArgumentParser(prog="python -m bench.connect_latency")
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "LIVEKIT_URL": "ws://127.0.0.1:7880",
        "LIVEKIT_API_KEY": "devkey",
        "LIVEKIT_API_SECRET": "secret-for-the-connect-latency-benchmark",
        "CEREBRAS_API_KEY": "unused",
        "TOKEN_SERVER_PORT": str(port),
        "BOT_COMMAND": "true",
        "BOT_WARM_POOL": "0",
        "MAX_CONCURRENT_SESSIONS": "1000",
        "RATE_LIMIT_PER_MINUTE": "100000",
        "LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen([sys.executable, "-m", "server"], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        asyncio.run(measure(base, 20, 1))  # warm up
        print(
            report(
                "POST /connect, one at a time",
                asyncio.run(measure(base, args.count, 1)),
                TARGET_P95_MS,
            )
        )
        print(
            report(
                "POST /connect, 10 at once",
                asyncio.run(measure(base, args.count, 10)),
                TARGET_P95_MS,
            )
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
