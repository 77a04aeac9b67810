"""How long the user's audio waited on its way in before the pipeline saw it."""

from dataclasses import dataclass

from pipecat.frames.frames import SystemFrame


@dataclass
class UplinkDelayFrame(SystemFrame):
    """Seconds the user's last words sat in the transport's receive buffers.

    The input transport sends one after each pause the VAD reports; the turn metrics
    count the user's speech as having ended this much before it reached the VAD.
    """

    seconds: float
