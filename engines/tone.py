"""A tone code for speech: each word becomes a short beep whose pitch names it.

The TTS stand-in speaks with it, so a test that only has the audio a participant heard
can still say which words the bot spoke, even after resampling and Opus coding.
"""

import re
import zlib
from typing import NamedTuple

import numpy as np

BASE_HZ = 300.0
STEP_HZ = 20.0
BINS = 150
WORD_SECS = 0.12
GAP_SECS = 0.03
AMPLITUDE = 0.3

_WORD = re.compile(r"[\w']+")


def words_of(text: str) -> list[str]:
    """The words of a text, lower-cased, as the code sees them."""
    return [w.lower() for w in _WORD.findall(text)]


def word_code(word: str) -> int:
    """The pitch step (0..BINS-1) that encodes a word."""
    return zlib.crc32(word.lower().encode()) % BINS


def word_frequency(word: str) -> float:
    """The pitch that encodes a word."""
    return BASE_HZ + STEP_HZ * word_code(word)


def code(text: str) -> list[int]:
    """The pitch steps a text is spoken as, word by word."""
    return [word_code(w) for w in words_of(text)]


def encode(text: str, sample_rate: int) -> bytes:
    """PCM16 mono audio of a text: one beep per word, each followed by a short gap."""
    tone_samples = int(WORD_SECS * sample_rate)
    gap = np.zeros(int(GAP_SECS * sample_rate), dtype=np.int16)
    t = np.arange(tone_samples) / sample_rate
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.005)
    pieces = []
    for word in words_of(text):
        wave = AMPLITUDE * fade * np.sin(2 * np.pi * word_frequency(word) * t)
        pieces += [(wave * 32767).astype(np.int16), gap]
    return b"".join(p.tobytes() for p in pieces)


def decode(pcm: bytes, sample_rate: int) -> list[int]:
    """The pitch steps heard in PCM16 mono audio, one per word.

    Beeps are found as runs of loud 10 ms windows; each run's dominant pitch is
    rounded to the nearest step, and dropped when it lies between steps. A beep that
    a receiver's jitter buffer split (packets late: a fading concealment, a short gap,
    then the rest) is one word: two runs of the same pitch under `SPLIT_GAP_SECS`
    apart that together hold no more than one beep at full level.
    """
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype=np.int16).astype(np.float32)
    window = max(1, sample_rate // 100)
    count = len(samples) // window
    if count == 0:
        return []
    frames = samples[: count * window].reshape(count, window)
    levels = np.sqrt((frames**2).mean(axis=1))
    loud = levels > 32767 * AMPLITUDE * 0.25
    full = levels > _FULL_RMS * 0.8
    beeps: list[_Beep] = []
    start = None
    for i, is_loud in enumerate([*loud, False]):
        if is_loud and start is None:
            start = i
        elif not is_loud and start is not None:
            step = (
                _step_of(samples[start * window : i * window], sample_rate)
                if i - start >= 5
                else None
            )
            if step is not None:
                beep = _Beep(step, start, i, int(full[start:i].sum()))
                if beeps and beeps[-1].is_split_from(beep):
                    beeps[-1] = beeps[-1].joined(beep)
                else:
                    beeps.append(beep)
            start = None
    return [beep.step for beep in beeps]


# RMS of a beep at full level, and the longest receive gap that can split one.
_FULL_RMS = 32767 * AMPLITUDE / np.sqrt(2)
SPLIT_GAP_SECS = 0.15
_WINDOWS_PER_WORD = round(WORD_SECS * 100)


class _Beep(NamedTuple):
    """One run of loud 10 ms windows: its pitch step, window span, full-level windows."""

    step: int
    start: int
    end: int
    full_windows: int

    def is_split_from(self, later: "_Beep") -> bool:
        """Whether `later` is the rest of this same beep, after a receive gap."""
        return (
            later.step == self.step
            and later.start - self.end < SPLIT_GAP_SECS * 100
            and self.full_windows + later.full_windows <= _WINDOWS_PER_WORD * 1.25
        )

    def joined(self, later: "_Beep") -> "_Beep":
        """This beep and its rest, as one."""
        return _Beep(self.step, self.start, later.end, self.full_windows + later.full_windows)


def _step_of(segment: np.ndarray, sample_rate: int) -> int | None:
    """The pitch step of a run of audio, if its dominant pitch lies on a step."""
    size = 8 * len(segment)
    spectrum = np.abs(np.fft.rfft(segment * np.hanning(len(segment)), n=size))
    peak = np.fft.rfftfreq(size, 1 / sample_rate)[int(spectrum.argmax())]
    step = round((peak - BASE_HZ) / STEP_HZ)
    if 0 <= step < BINS and abs(BASE_HZ + step * STEP_HZ - peak) < STEP_HZ / 3:
        return step
    return None
