"""Real speech for tests and benchmarks: espeak-ng sentences as 16 kHz mono PCM16."""

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np


def read_pcm(path: Path) -> bytes:
    with wave.open(str(path)) as wav:
        return wav.readframes(wav.getnframes())


class Speaker:
    """Synthesizes sentences with espeak-ng (resampled by sox), each once."""

    def __init__(self, folder: Path) -> None:
        if not (shutil.which("espeak-ng") and shutil.which("sox")):
            raise RuntimeError(
                "espeak-ng and sox are required: scripts/install --test installs them"
            )
        self._folder = folder
        self._cache: dict[str, bytes] = {}

    def __call__(self, text: str) -> bytes:
        if text not in self._cache:
            n = len(self._cache)
            raw, wav16 = self._folder / f"{n}-raw.wav", self._folder / f"{n}.wav"
            subprocess.run(["espeak-ng", "-s", "160", "-w", str(raw), text], check=True)
            subprocess.run(
                ["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(wav16)], check=True
            )
            self._cache[text] = read_pcm(wav16)
        return self._cache[text]


def with_pause(first: bytes, second: bytes, pause_s: float, threshold: int = 500) -> bytes:
    """Two spoken phrases as one utterance with `pause_s` of silence between the voices.

    espeak-ng ends a phrase with ~0.35 s of silence; it is cut so the pause is the one
    asked for (plus the second phrase's short lead-in).
    """
    samples = memoryview(first).cast("h")
    end = len(samples)
    while end and abs(samples[end - 1]) <= threshold:
        end -= 1
    return first[: end * 2] + bytes(int(pause_s * 16000) * 2) + second


def noise_burst(secs: float) -> bytes:
    """White noise at half scale, 16 kHz PCM16 (a cough or a door, to the VAD)."""
    rng = np.random.default_rng(7)
    return (rng.uniform(-0.5, 0.5, int(secs * 16000)) * 32767).astype("<i2").tobytes()
