"""Where a sound begins and ends, before the VAD has decided it is speech."""

import numpy as np
import pytest

from processors.sound_span import SoundSpan
from processors.voice_onset import VoiceOnset

pytestmark = pytest.mark.unit
RATE = 16000


def events(windows: str, voiced: str = "") -> list[tuple[int, str, bool]]:
    """Feed 10 ms windows ('#' loud, '.' quiet; `voiced` marks where the VAD hears voice)."""
    span = SoundSpan()
    out: list[tuple[int, str, bool]] = []
    for i, window in enumerate(windows):
        event = span.add([window == "#"], voiced=voiced[i : i + 1] == "v")
        if event:
            out.append((i, event, span.voiced))
    return out


def test_a_cough_is_one_sound_that_ends_a_quarter_second_after_it() -> None:
    assert events("." * 10 + "#" * 15 + "." * 40) == [
        (11, "started", False),
        (49, "stopped", False),
    ]


def test_a_click_is_no_sound() -> None:
    assert events("." * 10 + "#" + "." * 40) == []


def test_a_sentence_with_a_comma_is_one_voiced_sound() -> None:
    stop_what = "#" * 30 + "." * 15 + "#" * 60 + "." * 30
    voiced = " " * 12 + "v" * 18 + " " * 15 + "v" * 60
    assert events(stop_what, voiced) == [(1, "started", False), (129, "stopped", True)]


def test_a_steady_unvoiced_noise_ends_after_half_a_second_and_starts_nothing_more() -> None:
    assert events("#" * 300) == [(1, "started", False), (49, "stopped", False)]


def test_a_noisy_room_is_not_loud_but_speech_over_it_is() -> None:
    onset = VoiceOnset()
    t = np.arange(RATE // 50) / RATE
    fan = np.random.default_rng(1).normal(0, 1500, t.size)
    flags: list[bool] = []
    for i in range(150):  # 3 s of fan, then a voice over it
        voice = 12000 * np.sin(2 * np.pi * 200 * t) if i >= 100 else 0
        pcm = np.clip(fan + voice, -32768, 32767).astype(np.int16).tobytes()
        flags += onset.add(i * 20_000_000, pcm, RATE)
    assert not any(flags[2:200]), "the fan alone"
    assert all(flags[200:]), "the voice over the fan"
