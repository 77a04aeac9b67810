"""Test speech for the benchmarks: espeak-ng sentences as 16 kHz mono PCM16."""

import subprocess
import tempfile
import wave
from pathlib import Path


def speech(text: str) -> bytes:
    """16 kHz mono PCM16 of `text` from espeak-ng."""
    with tempfile.TemporaryDirectory() as folder:
        raw, pcm = Path(folder) / "raw.wav", Path(folder) / "16k.wav"
        subprocess.run(["espeak-ng", "-s", "160", "-w", str(raw), text], check=True)
        subprocess.run(
            ["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(pcm)], check=True
        )
        with wave.open(str(pcm)) as wav:
            return wav.readframes(wav.getnframes())
