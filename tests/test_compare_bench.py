"""The compare bench's quick run: our bot and LiveKit Agents on one real stack.

`python -m bench compare --quick` must produce every figure for every system (it
exits 1 otherwise): voice to voice in both engine scenarios, barge-in, 1 and 2
conversations at once with CPU and memory per session, bursts of 1 and 2 rooms (these
two also with our rooms in one process), and
one round of each turn-taking scenario on the matched peer (our bot's turn-taking is
asserted by tests/test_e2e_turn_taking.py; the scoring by tests/test_compare_turn_taking.py).
"""

import json
from pathlib import Path

import pytest

from bench.__main__ import main
from bench.compare.systems import COST_SYSTEMS, OURS_SHARED, SYSTEMS, THEIRS_MATCHED
from bench.compare.turn_taking import SCENARIOS

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(900)
def test_quick_compare_has_every_figure(tmp_path: Path) -> None:
    assert main(["compare", "--quick", "--out", str(tmp_path), "--date", "quick"]) == 0
    result = json.loads((tmp_path / "quick-compare.json").read_text())
    for system in SYSTEMS:
        for by_system in result["latency"].values():
            # Every answer came back within a human-noticeable but sane gap.
            assert all(100 < ms < 10_000 for ms in by_system[system]), (system, by_system)
        # The bot stopped talking once interrupted, within a few seconds.
        assert all(0 < ms < 3000 for ms in result["barge_in"][system]), result["barge_in"]
    for system in COST_SYSTEMS:
        level = result["concurrency"][system]["2"]
        assert level["failures"] == 0 and level["cpu_per_session_pct"] > 0
        assert level["rss_per_session_mb"] > 20
        assert 0 < level["pss_per_session_mb"] <= level["rss_per_session_mb"]
    rounds = result["turn_taking"][THEIRS_MATCHED]
    # One round of each, every one heard through (a failed round has no record).
    assert {name: len(rounds[name]) for name in SCENARIOS} == dict.fromkeys(SCENARIOS, 1)
    assert all(rounds[name][0] is not None for name in SCENARIOS), rounds
    table = (tmp_path / "quick-compare.md").read_text()
    assert "| turn-taking figure |" in table
    assert THEIRS_MATCHED in table and OURS_SHARED in table
    assert "sessions with p95 within" in table
    assert len(list(tmp_path.glob("quick-compare-*.png"))) == 3
