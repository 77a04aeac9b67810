"""Waiting helpers shared by the tests that run real processes."""

import asyncio
import subprocess
import time
from collections.abc import Callable

import aiohttp
import pytest


async def until(
    condition: Callable[[], object], timeout: float, what: str | Callable[[], str]
) -> None:
    """Poll `condition` until it holds, or fail the test naming `what` (computed at the end)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            described = what() if callable(what) else what
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {described}")
        await asyncio.sleep(0.05)


async def answers(url: str, process: subprocess.Popen, timeout: float) -> bool:
    """Whether `url` answers 200 before `timeout`, while `process` is still running."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return True
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    return False
