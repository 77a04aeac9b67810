"""Where a sound begins and ends in the user's audio, 10 ms at a time.

A sound begins with `MIN_LOUD_S` of loud audio (see `VoiceOnset` for what counts as
loud) and ends after `QUIET_HOLD_S` without any: long enough to bridge the gaps
between words ("Stop, what…"), so one sentence is one sound. A sound that goes on for
`MAX_UNVOICED_S` with no voice in it ends there (a fan, music): the room is loud, not
the user.
"""

from typing import Literal

from processors.voice_onset import WINDOW_S

MIN_LOUD_S = 0.02
QUIET_HOLD_S = 0.25
MAX_UNVOICED_S = 0.5

SoundEvent = Literal["started", "stopped"]


class SoundSpan:
    """Turns loud and quiet 10 ms windows into the start and end of sounds."""

    def __init__(self) -> None:
        """Initialize, with no sound going on."""
        self._loud_run = 0
        self._quiet_run = 0
        self._length = 0
        self._sounding = False
        self._reported = False
        self.voiced = False
        # Seconds of the current sound so far, counted to the end of the last window.
        self.length_s = 0.0

    def add(self, loud_windows: list[bool], voiced: bool) -> SoundEvent | None:
        """Take the next windows; `voiced` says whether the VAD hears voice now.

        Returns "started" or "stopped" when a sound began or ended within them.
        """
        event: SoundEvent | None = None
        for loud in loud_windows:
            event = self._step(loud, voiced) or event
        return event

    def _step(self, loud: bool, voiced: bool) -> SoundEvent | None:
        self._loud_run = self._loud_run + 1 if loud else 0
        self._quiet_run = 0 if loud else self._quiet_run + 1
        if not self._sounding:
            if self._loud_run * WINDOW_S < MIN_LOUD_S:
                return None
            self._sounding, self._reported, self._length = True, True, self._loud_run
            self.voiced = voiced
            self.length_s = self._length * WINDOW_S
            return "started"
        self._length += 1
        self.length_s = self._length * WINDOW_S
        self.voiced = self.voiced or voiced
        if self._quiet_run * WINDOW_S >= QUIET_HOLD_S:
            self._sounding = False
            return self._stop()
        if not self.voiced and self._length * WINDOW_S >= MAX_UNVOICED_S:
            return self._stop()
        return None

    def _stop(self) -> SoundEvent | None:
        if not self._reported:
            return None
        self._reported = False
        return "stopped"
