"""Where the user's voice began, from the input audio's loudness.

The VAD reports speech `start_secs` after Silero's confidence first held, but Silero
does not count a word's first sounds ("S-t-" in "Stop") and its confidence takes a few
windows to rise, so `at - start_secs` places the start of an interruption ~0.1-0.2 s
late. A listener counts from the first voiced sound; this finds it in the audio the
bot received, the way the listener bench does (10 ms windows above -40 dBFS by default).

In a noisy room a window counts as loud only `FLOOR_MARGIN` above the room's noise
floor: the quietest window of the last `FLOOR_S` seconds (speech always has gaps).
"""

from collections import deque

import numpy as np

# A 10 ms window counts as voiced above this loudness by default, as in the bench.
VOICED_DBFS = -40.0
FULL_SCALE = 32768.0
# Silence inside one stretch of voice (a stop consonant, a comma) up to this long.
MAX_GAP_NS = 150_000_000
# How far before the VAD's own start an onset may lie; further means steady noise.
MAX_LEAD_NS = 600_000_000
WINDOW_S = 0.01
NS_PER_S = 1_000_000_000
# Loud: this many times the noise floor's RMS (12 dB) as well as above the minimum.
FLOOR_MARGIN = 4.0
# The floor is the minimum over this long, kept as the minima of half-second blocks.
FLOOR_S = 3.0
FLOOR_BLOCK_WINDOWS = 50


class VoiceOnset:
    """Keeps the last second or so of input loudness, 10 ms at a time."""

    def __init__(self, keep_s: float = 1.5, min_dbfs: float = VOICED_DBFS) -> None:
        """Initialize an empty history of `keep_s` seconds; loud is above `min_dbfs`."""
        self._min_rms = FULL_SCALE * 10 ** (min_dbfs / 20)
        self._windows: deque[tuple[int, bool]] = deque(maxlen=int(keep_s / WINDOW_S))
        self._block_minima: deque[float] = deque(
            maxlen=int(FLOOR_S / WINDOW_S) // FLOOR_BLOCK_WINDOWS
        )
        self._block_min = float("inf")
        self._block_windows = 0

    def add(self, at: int, pcm: bytes, sample_rate: int, channels: int = 1) -> list[bool]:
        """Note audio that arrived at `at` (ns): its last sample is that recent.

        Returns whether each of its whole 10 ms windows was loud.
        """
        samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype=np.int16)[::channels]
        size = max(1, int(sample_rate * WINDOW_S))
        count = len(samples) // size
        if count == 0:
            return []
        # The last `count` whole windows: they end with the frame, as their times say.
        windows = samples[samples.size - count * size :].astype(np.float32).reshape(count, size)
        step = int(WINDOW_S * NS_PER_S)
        flags = []
        for i, rms in enumerate(np.sqrt((windows**2).mean(axis=1)).tolist()):
            floor = self._noise_floor(rms)
            loud = rms > self._min_rms and rms > FLOOR_MARGIN * floor
            self._windows.append((at - (count - i) * step, loud))
            flags.append(loud)
        return flags

    def _noise_floor(self, rms: float) -> float:
        """The room's noise floor, with this window's `rms` taken into account."""
        self._block_min = min(self._block_min, rms)
        self._block_windows += 1
        floor = min([self._block_min, *self._block_minima])
        if self._block_windows == FLOOR_BLOCK_WINDOWS:
            self._block_minima.append(self._block_min)
            self._block_min, self._block_windows = float("inf"), 0
        return floor

    def onset(self, vad_start: int) -> int:
        """The start of the stretch of voice the VAD placed at `vad_start` (ns).

        `vad_start` itself when the audio shows no earlier voice, or voice that reaches
        further back than `MAX_LEAD_NS` (noise, not speech).
        """
        start: int | None = None
        last_voiced: int | None = None
        for began, loud in reversed(self._windows):
            if loud:
                if last_voiced is not None and last_voiced - began > MAX_GAP_NS:
                    break
                start = last_voiced = began
            elif last_voiced is not None and last_voiced - began > MAX_GAP_NS:
                break
            elif last_voiced is None and vad_start - began > MAX_GAP_NS:
                break
        if start is None or start >= vad_start or vad_start - start > MAX_LEAD_NS:
            return vad_start
        return start
