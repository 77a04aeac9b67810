"""The compare bench's turn-taking scoring, on what a listener could have recorded.

A cough's round must tell a reply resumed whole from one that lost or repeated words
or was answered instead; a pause must be timed from the sound; a mid-thought sentence
answered early counts as cut off; a system lacking a figure makes the run fail.
"""

import json
from dataclasses import asdict
from typing import Any

import pytest

from bench.compare.report import missing, table, turn_taking_table
from bench.compare.systems import OURS_REALTIME, OURS_SHARED
from bench.compare.turn_taking import SCENARIOS, score_mid_thought, score_overlap
from bench.listener.mid_thought import BOOKED, CUT_OFF
from engines import tone
from tests.hearing import TONE_SENTENCES

pytestmark = pytest.mark.unit

REPLY = tone.code(TONE_SENTENCES)
ONSET = 10.0


def _loud(*spans: tuple[float, float]) -> list[float]:
    """Arrival times of 10 ms frames with sound over the given spans."""
    return [a + i / 100 for a, b in spans for i in range(int(round((b - a) * 100)))]


def test_a_reply_paused_and_resumed_with_a_short_backup_is_whole() -> None:
    heard = REPLY[:8] + REPLY[6:]  # two words heard again after the pause
    got = score_overlap(REPLY, heard, _loud((9.0, 10.3), (11.5, 14.0)), ONSET)
    assert got.whole and got.lost == 0 and got.repeated == 2 and got.other == 0
    assert got.pause_onset_ms == pytest.approx(290, abs=15)
    assert got.pause_ms == pytest.approx(1210, abs=15)


def test_lost_words_or_an_answer_instead_are_told_apart() -> None:
    lost = score_overlap(REPLY, REPLY[:8] + REPLY[12:], _loud((9.0, 10.3), (11.5, 14)), ONSET)
    assert not lost.whole and lost.lost == 4
    answered = score_overlap(
        REPLY, REPLY[:8] + tone.code("Okay."), _loud((9.0, 10.3), (11.5, 12)), ONSET
    )
    assert not answered.whole and answered.other == 1 and answered.lost == len(REPLY) - 8


def test_a_reply_that_plays_on_has_no_pause() -> None:
    got = score_overlap(REPLY, REPLY, _loud((9.0, 13.0)), ONSET)
    assert got.whole and got.pause_onset_ms is None and got.pause_ms is None
    # A silence long after the sound is not its pause.
    late = score_overlap(REPLY, REPLY, _loud((9.0, 13.0), (13.5, 14)), ONSET)
    assert late.pause_ms is None


def test_mid_thought_cut_off_early_audio_or_first_half_answered() -> None:
    booked, cut = tone.code(BOOKED), tone.code(CUT_OFF)
    assert not score_mid_thought(booked, 5.8, 5.0, 5.8).cut_off
    assert score_mid_thought(booked, 4.2, 5.0, 5.8).cut_off
    assert score_mid_thought(cut + booked, 5.3, 5.0, 5.3).cut_off
    assert score_mid_thought(booked, 5.8, 5.0, 5.8).voice_to_voice_ms == 800


def _results(by_system: dict[str, Any]) -> dict[str, Any]:
    return {
        "meta": {
            "scenarios_run": ["turn-taking"],
            "turn_taking_systems": list(by_system),
            "concurrency_levels": [],
            "burst_levels": [],
        },
        "latency": {},
        "barge_in": {},
        "concurrency": {},
        "burst": {},
        "turn_taking": by_system,
    }


def test_every_figure_present_or_the_run_fails() -> None:
    whole = asdict(score_overlap(REPLY, REPLY, _loud((9.0, 10.3), (11.5, 14.0)), ONSET))
    plays_on = asdict(score_overlap(REPLY, REPLY, _loud((9.0, 14.0)), ONSET))
    complete = {
        "cough": [plays_on],
        "wordless": [whole],
        "mm-hm": [plays_on],
        "stop": [{"barge_in_ms": 420.0, "answered": True, "heard": [1, 1, 3, 2, 2]}],
        "mid-thought": [asdict(score_mid_thought(tone.code(BOOKED), 5.8, 5.0, 5.8))],
    }
    assert set(complete) == set(SCENARIOS)
    assert missing(_results({"ours": complete, "theirs": complete})) == []
    table = turn_taking_table(_results({"ours": complete}))
    assert "| wordless voice: reply heard whole, in order (rounds) | 1/1 |" in table
    # A system that never paused has no pause time, which is not a missing figure.
    assert missing(_results({"ours": {**complete, "wordless": [plays_on]}})) == []
    # A scenario whose every round failed, or a barge-in never timed, is.
    failed = missing(_results({"ours": complete, "theirs": {**complete, "stop": [None]}}))
    assert failed and all(gap.endswith(": theirs") for gap in failed)
    assert missing(_results({"ours": {**complete, "mm-hm": []}}))


def test_a_saved_run_gives_the_table_it_was_printed_with() -> None:
    """A results file read back (room counts become strings in JSON) loses no figure."""
    level = {
        "voice_to_voice_ms": [700.0, 760.0],
        "p50_ms": 730.0,
        "p95_ms": 757.0,
        "failures": 0,
        "cpu_per_session_pct": 12.0,
        "rss_per_session_mb": 110.0,
        "pss_per_session_mb": 90.0,
        "bench_process_cpu_pct": 30.0,
        "sfu_cpu_pct": 5.0,
    }
    systems = [OURS_REALTIME, OURS_SHARED]
    run = {
        **_results({}),
        "meta": {
            "scenarios_run": ["concurrency", "burst"],
            "systems_run": systems,
            "concurrency_levels": [1, 2],
            "burst_levels": [2],
        },
        "concurrency": {s: {1: level, 2: level} for s in systems},
        # The third room's bot was never heard; its listener was in the room.
        "burst": {s: {2: [500.0, 600.0, None]} for s in systems},
        "burst_in_room": {s: {2: [200.0, 400.0, 300.0]} for s in systems},
    }
    saved = json.loads(json.dumps(run))
    assert missing(run) == [] and missing(saved) == []
    assert table(saved) == table(run)
    assert "| 2 at once: PSS per active session (MB) | 90 | 90 | ≤ 100 MB |" in table(saved)
    # Per room, what the bots took once the listener was in: 300 and 200 ms.
    assert "| burst of 2: first bot audio after the listener joined p95 (ms) | 295 | 295 |" in (
        table(saved)
    )
