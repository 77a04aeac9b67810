"""Hop extraction for the listener bench, on hand-made stand-in logs."""

import pytest

from bench.listener.hops import EngineLogs, missing, summary, turn_hops

pytestmark = pytest.mark.unit


def test_hops_follow_the_reply_that_was_heard() -> None:
    stt = [
        {"kind": "utterance", "at": 10.30},
        {"kind": "transcribed", "at": 10.45},
    ]
    llm = [
        # A preemptive request the bot closed, then the one whose reply was heard.
        {"kind": "chat", "request": "a", "at": 10.46},
        {"kind": "chat_cancelled", "request": "a", "at": 10.50},
        {"kind": "chat", "request": "b", "at": 10.52},
        {"kind": "chat_first_token", "request": "b", "at": 10.67},
    ]
    tts = [
        {"kind": "speech", "request": "x", "at": 10.70},
        {"kind": "speech_first_audio", "request": "x", "at": 10.85},
    ]
    hops = turn_hops(10.0, 10.9, EngineLogs(stt, llm, tts))
    assert hops == {
        "stt_commit": 300.0,
        "stt_final": 450.0,
        "llm_request": 520.0,
        "llm_first_token": 670.0,
        "tts_request": 700.0,
        "tts_first_audio": 850.0,
        "heard": 900.0,
    }
    assert turn_hops(10.0, None, EngineLogs(stt, [], []))["llm_request"] is None


def test_summary_reports_steps_and_missing_hops() -> None:
    turns: list[dict[str, float | None]] = [
        {"stt_commit": 300.0, "stt_final": 450.0, "heard": 900.0},
        {"stt_commit": 320.0, "stt_final": 480.0, "heard": None},
    ]
    table = summary(turns)
    assert table["stt_final"]["step_p50"] == 155.0
    assert table["heard"]["n"] == 1
    assert "turn 2: heard" in missing(turns)
    assert "turn 1: llm_request" in missing(turns)
