"""Silero VAD that reports a pause early without making a resumed sentence start over.

Pipecat's VAD reports speech stopped after `stop_secs` of silence, and speech that
follows needs `start_secs` of voice before it counts again. This analyzer reports the
stop after a short pause (`stop_secs`, the moment the STT finalizes what it has and a
preemptive reply may start), but for `resume_secs` after that stop it treats voice as
the same speech going on: it is reported at once, as it would have been had the VAD
still been waiting out the whole endpointing silence. The turn ends only when
`stop_secs + resume_secs` of silence have passed (the turn stop strategy waits the
rest), so the endpointing is unchanged; only the work between the two moves earlier.

Silero is slow to let go: one or two 32 ms windows of plain silence after the last
word still score above the threshold (its recurrent state lags the audio), which
holds the stop back 30-100 ms. A window that is quiet, `QUIET_DB` below the user's
recent speech, and that Silero doubts at all (below `QUIET_CONFIDENCE`) counts as
silence. Silero stays near certain through the short closures inside words ("doc-tor"),
so those never count, and a noisy room, where no window is that quiet, leaves the
VAD as it was.

It also measures the silence it stopped on (`silence_secs`): from the end of the last
voiced 10 ms of audio to the moment of the stop.

Silero costs ~0.2 ms a window warm but ~0.8 ms when it runs only every 32 ms (its
weights are out of the cache by then), a third of the bot's Python CPU while it only
listens. A window below `SILENT_DBFS` while the VAD is quiet (and not within a pause it
may resume from) is silence without asking Silero: digital silence from a muted or
noise-suppressed microphone, or a silent room. Silero's state then stays as the last
quiet window it scored left it (the spell starts at least the resume time after the
last words), so the next words are scored as they would be after a short silence. With
no loudness gate (`min_volume` 0) Pipecat's loudness of each window is skipped too.
"""

from typing import Any

import numpy as np
from pipecat.audio.vad.vad_analyzer import VADState

from processors.inline_vad import InlineSileroVADAnalyzer

QUIET_DB = 30.0
# The end of the user's voice: the last 10 ms within this much of their speech level.
VOICED_DB = 20.0
QUIET_CONFIDENCE = 0.95
# Below this a window is silence, not speech (speech's quietest sounds are ~-45 dBFS).
SILENT_DBFS = -60.0
# The user's speech level: a moving average over speech windows, about the last 0.3 s.
SPEECH_LEVEL_WEIGHT = 0.1
BLOCK_SECS = 0.01


def rms(audio: np.ndarray) -> float:
    """Root mean square of PCM16 samples."""
    return float(np.sqrt(np.mean(audio.astype(np.float32) ** 2))) if audio.size else 0.0


def _voiced_length(window: np.ndarray, floor: float, sample_rate: int) -> int:
    """Samples of a speech window up to the end of its last 10 ms block above `floor`."""
    block = max(1, int(sample_rate * BLOCK_SECS))
    ends = [
        min(start + block, window.size)
        for start in range(0, window.size, block)
        if rms(window[start : start + block]) >= floor
    ]
    return ends[-1] if ends else 0


class PausingSileroVADAnalyzer(InlineSileroVADAnalyzer):
    """`SileroVADAnalyzer` with an early stop, an instant resume after it, quiet windows."""

    def __init__(
        self, *, resume_secs: float, silent_dbfs: float = SILENT_DBFS, **kwargs: Any
    ) -> None:
        """Initialize the analyzer.

        Args:
            resume_secs: How long after a reported stop voice resumes the same speech
                without `start_secs` of confirmation (0: never).
            silent_dbfs: Windows below this level while quiet skip Silero (-inf: none).
            **kwargs: Passed to `SileroVADAnalyzer` (params with the short stop_secs).
        """
        super().__init__(**kwargs)
        self._resume_secs = resume_secs
        self._silent_rms = 32768 * 10 ** (silent_dbfs / 20)
        self._stopped_at: int | None = None
        self._last_state = VADState.QUIET
        self._last_confidence = 0.0
        self._speech_level = 0.0
        # Samples received, samples scored by Silero, and where the last voiced audio
        # ended, all counted from the start of the stream.
        self._received = 0
        self._scored = 0
        self._voice_ended_at = 0

    @property
    def silence_secs(self) -> float:
        """Seconds of audio received since the user's last voiced audio."""
        return (self._received - self._voice_ended_at) / self.sample_rate

    @property
    def hears_voice(self) -> bool:
        """Whether Silero's last window was voice, or speech is going on."""
        return self._vad_state != VADState.QUIET

    def voice_confidence(self, buffer: bytes) -> float:
        """Silero's confidence for one window; 0 for a window quiet enough to be a pause."""
        samples = np.frombuffer(buffer, dtype=np.int16)
        level = rms(samples)
        if level < self._silent_rms and self._vad_state == VADState.QUIET and not self._resumes():
            self._scored += samples.size
            self._last_confidence = 0.0
            return 0.0
        confidence = float(np.asarray(super().voice_confidence(buffer)).ravel()[0])
        quiet = level < self._speech_level * 10 ** (-QUIET_DB / 20)
        in_speech = self._vad_state != VADState.QUIET or self._resumes()
        if quiet and confidence < QUIET_CONFIDENCE and in_speech:
            confidence = 0.0
        if confidence >= self.params.confidence:
            self._speech_level += SPEECH_LEVEL_WEIGHT * (level - self._speech_level)
            floor = self._speech_level * 10 ** (-VOICED_DB / 20)
            voiced = _voiced_length(samples, floor, self.sample_rate)
            if voiced:
                self._voice_ended_at = self._scored + voiced
        self._scored += samples.size
        self._last_confidence = confidence
        return confidence

    def _get_smoothed_volume(self, audio: bytes) -> float:
        # Speech needs volume >= min_volume; at 0 any volume passes, so skip computing it.
        return 1.0 if self.params.min_volume <= 0 else super()._get_smoothed_volume(audio)

    def _run_analyzer(self, buffer: bytes) -> VADState:
        self._received += len(buffer) // 2
        state = super()._run_analyzer(buffer)
        if state == VADState.QUIET and self._last_state in (VADState.SPEAKING, VADState.STOPPING):
            self._stopped_at = self._received
        elif self._resumes() and self._last_confidence >= self.params.confidence:
            # Voice within the endpointing silence: the sentence goes on. The volume
            # gate is skipped here: its 0.4 s loudness window lags a restart by
            # ~0.3 s, longer than the turn has left to run.
            self._vad_state = state = VADState.SPEAKING
            self._vad_starting_count = 0
        if state == VADState.SPEAKING:
            self._stopped_at = None
        self._last_state = state
        return state

    def _resumes(self) -> bool:
        return (
            self._stopped_at is not None
            and self._received - self._stopped_at <= self._resume_secs * self.sample_rate
        )
