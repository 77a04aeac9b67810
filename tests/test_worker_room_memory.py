"""A threaded worker host frees a finished room's objects as the room ends.

A room's pipeline holds reference cycles that only the full collection frees. Left to
Python's own schedule, a threaded host's RSS rose ~6 MB a room (496 -> 693 MB over 36
rooms) until one ran; the soak that showed it takes minutes, so this drives `run_job`
with a room that leaves a cycle behind, with automatic collection off.
"""

import gc
import weakref
from types import SimpleNamespace

import pytest
from livekit.agents import JobExecutorType

import bot.worker

pytestmark = pytest.mark.unit


class _Pipeline:
    """Stands for what a room leaves behind: objects that refer to each other."""

    def __init__(self) -> None:
        self.itself = self


async def test_a_job_threads_room_is_freed_as_it_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    left: list[weakref.ref[_Pipeline]] = []

    async def serve(ctx: object) -> None:
        left.append(weakref.ref(_Pipeline()))

    monkeypatch.setattr(bot.worker, "_serve_job", serve)
    ended: list[str] = []
    job = SimpleNamespace(room=SimpleNamespace(name="room-1"), id="job-1")
    ctx = SimpleNamespace(
        job=job, proc=SimpleNamespace(executor_type=JobExecutorType.THREAD), shutdown=ended.append
    )
    gc.disable()
    try:
        await bot.worker.run_job(ctx)  # type: ignore[arg-type]
        still_there = left[0]() is not None
    finally:
        gc.enable()
    assert ended == ["the conversation ended"]
    assert not still_there, "the room's cycles wait for Python's next full collection"
