"""A tone code for speech: each word becomes a short beep whose pitch names it.

The TTS stand-in speaks with it, so a test that only has the audio a participant heard
can still say which words the bot spoke, even after resampling and Opus coding.
"""

import re
import zlib

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
    """The pitch steps heard in PCM16 mono audio, one per beep.

    Beeps are found as runs of loud 10 ms windows; each run's dominant pitch is
    rounded to the nearest step, and dropped when it lies between steps.
    """
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype=np.int16).astype(np.float32)
    window = max(1, sample_rate // 100)
    count = len(samples) // window
    if count == 0:
        return []
    frames = samples[: count * window].reshape(count, window)
    loud = np.sqrt((frames**2).mean(axis=1)) > 32767 * AMPLITUDE * 0.25
    heard: list[int] = []
    start = None
    for i, is_loud in enumerate([*loud, False]):
        if is_loud and start is None:
            start = i
        elif not is_loud and start is not None:
            if i - start >= 5:
                segment = samples[start * window : i * window]
                size = 8 * len(segment)
                spectrum = np.abs(np.fft.rfft(segment * np.hanning(len(segment)), n=size))
                peak = np.fft.rfftfreq(size, 1 / sample_rate)[int(spectrum.argmax())]
                step = round((peak - BASE_HZ) / STEP_HZ)
                if 0 <= step < BINS and abs(BASE_HZ + step * STEP_HZ - peak) < STEP_HZ / 3:
                    heard.append(step)
            start = None
    return heard
