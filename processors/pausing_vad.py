"""Silero VAD that reports a pause early without making a resumed sentence start over.

Pipecat's VAD reports speech stopped after `stop_secs` of silence, and speech that
follows needs `start_secs` of voice before it counts again. This analyzer reports the
stop after a short pause (`stop_secs`, the moment the STT finalizes what it has and a
preemptive reply may start), but for `resume_secs` after that stop it treats voice as
the same speech going on: it is reported at once, as it would have been had the VAD
still been waiting out the whole endpointing silence. The turn ends only when
`stop_secs + resume_secs` of silence have passed (the turn stop strategy waits the
rest), so the endpointing is unchanged; only the work between the two moves earlier.
"""

from typing import Any

from pipecat.audio.vad.vad_analyzer import VADState

from processors.inline_vad import InlineSileroVADAnalyzer


class PausingSileroVADAnalyzer(InlineSileroVADAnalyzer):
    """`SileroVADAnalyzer` with an early stop and an instant resume after it."""

    def __init__(self, *, resume_secs: float, **kwargs: Any) -> None:
        """Initialize the analyzer.

        Args:
            resume_secs: How long after a reported stop voice resumes the same speech
                without `start_secs` of confirmation.
            **kwargs: Passed to `SileroVADAnalyzer` (params with the short stop_secs).
        """
        super().__init__(**kwargs)
        self._resume_secs = resume_secs
        self._analyzed = 0
        self._stopped_at: int | None = None
        self._last_state = VADState.QUIET
        self._last_confidence = 0.0

    def voice_confidence(self, buffer: bytes) -> float:
        """Silero's confidence for one window, remembered for the resume decision."""
        self._last_confidence = super().voice_confidence(buffer)
        return self._last_confidence

    def _run_analyzer(self, buffer: bytes) -> VADState:
        state = super()._run_analyzer(buffer)
        self._analyzed += len(buffer) // 2
        if state == VADState.QUIET and self._last_state in (VADState.SPEAKING, VADState.STOPPING):
            self._stopped_at = self._analyzed
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
            and self._analyzed - self._stopped_at <= self._resume_secs * self.sample_rate
        )
