"""Frames that say a sound began or ended in the user's audio, before the VAD decides.

The VAD confirms speech only after `VAD_START_SECS` of Silero's certainty, and Silero
misses a word's first sounds; a person talking over the bot expects it to stop at once.
These frames let the bot's audio pause on the sound itself, and play on when the sound
turns out to be nothing (`processors/overlap_turn_start.py`). They are system frames, so
they overtake the audio queued on the way.
"""

from dataclasses import dataclass

from pipecat.frames.frames import SystemFrame


@dataclass
class UserSoundStartedFrame(SystemFrame):
    """A sound rose above the room's noise in the user's audio.

    Parameters:
        start_secs: How long before this frame the sound's first loud audio arrived.
    """

    start_secs: float = 0.0


@dataclass
class UserSoundStoppedFrame(SystemFrame):
    """The sound ended, or went on too long to be a word's onset.

    Parameters:
        voiced: Whether Silero heard voice in it at all (a cough or a door: no).
    """

    voiced: bool = False
