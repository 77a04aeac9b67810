"""Where a barge-in began: the first voiced sound, not Silero's late confirmation."""

import numpy as np
import pytest

from processors.voice_onset import VoiceOnset

pytestmark = pytest.mark.unit
RATE = 16000
MS = 1_000_000


def _feed(onset: VoiceOnset, loudness: list[int]) -> None:
    """20 ms frames of a 200 Hz tone at each given peak, the first ending at 20 ms."""
    t = np.arange(RATE // 50) / RATE
    for i, peak in enumerate(loudness):
        pcm = (peak * np.sin(2 * np.pi * 200 * t)).astype(np.int16).tobytes()
        onset.add((i + 1) * 20 * MS, pcm, RATE)


def test_a_word_heard_before_the_vad_counts_from_its_first_sound() -> None:
    onset = VoiceOnset()
    # Silence to 400 ms, "S-t" (quiet) with a 60 ms closure, then the vowel.
    _feed(onset, [0] * 20 + [800] * 4 + [0] * 3 + [6000] * 20)
    # The VAD placed the start at 560 ms (Silero heard only the vowel).
    assert onset.onset(560 * MS) == 400 * MS


def test_steady_noise_leaves_the_vad_start_alone() -> None:
    onset = VoiceOnset()
    _feed(onset, [2000] * 60)
    assert onset.onset(1000 * MS) == 1000 * MS


def test_a_vad_start_before_the_loud_part_stays() -> None:
    onset = VoiceOnset()
    _feed(onset, [0] * 30 + [6000] * 20)  # loud from 600 ms
    assert onset.onset(590 * MS) == 590 * MS
