"""The shared-process bench through the real livekit-server, as a short run.

It must measure every room count it is given, and its figures must show what it is
there to weigh: each room in the process brings its own Opus encoder thread, while the
tokio runtime stays one per process.
"""

import json
from pathlib import Path

import pytest

from bench.__main__ import main

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(180)
def test_each_room_adds_an_encoder_and_the_runtime_is_shared(tmp_path: Path) -> None:
    args = ["shared-process", "--rooms", "1,2", "--seconds", "2", "--out", str(tmp_path)]
    assert main([*args, "--date", "quick"]) == 0
    by_rooms = json.loads((tmp_path / "quick-shared-process.json").read_text())["by_rooms"]
    assert set(by_rooms) == {"1", "2"}
    for rooms, figures in by_rooms.items():
        assert figures["threads"]["AudioEncoderQue"] == int(rooms)
        assert figures["cpu_pct"]["AudioEncoderQue"] > 0
    runtimes = [by_rooms[rooms]["threads"]["tokio-rt-worker"] for rooms in ("1", "2")]
    assert runtimes[0] == runtimes[1]
