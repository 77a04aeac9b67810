"""The listener bench's quick runs, through the real livekit-server, as the suite runs them.

`python -m bench.listener --quick` must find every hop of every turn, and `--barge-in
--quick` every figure of both interruptions (each exits 1 otherwise), and write a
results file a later run can be compared with.
"""

import json
from pathlib import Path

import pytest

from bench.listener.__main__ import main
from bench.listener.hops import HOPS

pytestmark = pytest.mark.e2e

# A whole stack, a greeting and three turns: about 40 s here, more on a busy machine.
TIMEOUT_S = 240


@pytest.mark.timeout(TIMEOUT_S)
def test_quick_run_finds_every_hop(tmp_path: Path) -> None:
    assert main(["--quick", "--out", str(tmp_path), "--label", "quick"]) == 0
    (result_file,) = tmp_path.glob("*-listener-quick.json")
    result = json.loads(result_file.read_text())
    assert len(result["turns"]) == 3
    assert result["options"]["bot"]["vad_stop_secs"] == 0.2
    assert result["commit"]
    for turn in result["turns"]:
        moments = [turn["hops"][name] for name in HOPS]
        # Hops come in causal order, and the bot's own figure was received.
        assert moments == sorted(moments), turn
        assert turn["bot_voice_to_voice_ms"] is not None
    # The listener decodes what it hears (a loaded machine may garble a word now and then).
    assert result["replies_heard_whole"] >= 1, [t["words_heard"] for t in result["turns"]]
    assert list(tmp_path.glob("*-listener-quick.png"))


@pytest.mark.timeout(TIMEOUT_S)
def test_quick_barge_in_run_finds_every_figure(tmp_path: Path) -> None:
    assert main(["--barge-in", "--quick", "--out", str(tmp_path), "--label", "quick"]) == 0
    (result_file,) = tmp_path.glob("*-listener-barge-in-quick.json")
    result = json.loads(result_file.read_text())
    assert len(result["turns"]) == 2
    for turn in result["turns"]:
        # The old reply went (paused on the sound, before the VAD had confirmed speech,
        # or at the latest as it did), and the interruption was answered.
        assert 0 < turn["listener_ms"] < turn["vad_ms"] + 150, turn
        assert turn["bot_ms"] is not None and turn["answer_heard"], turn
    assert result["summary"]["listener_ms"]["p95"] is not None
