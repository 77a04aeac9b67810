"""Frames that hold and release the bot's audio at the output without dropping it.

They are system frames, so they overtake the audio queued in every processor on the
way to the output transport and take effect at once.
"""

from dataclasses import dataclass

from pipecat.frames.frames import SystemFrame


@dataclass
class PausePlayoutFrame(SystemFrame):
    """Stop the bot's audio where the listener is now; keep the rest for later."""


@dataclass
class ResumePlayoutFrame(SystemFrame):
    """Play on from a little before where the audio was paused."""
