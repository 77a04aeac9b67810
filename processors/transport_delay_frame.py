"""How long the user's audio waits on its way in, and the bot's on its way out, unseen."""

from dataclasses import dataclass

from pipecat.frames.frames import SystemFrame


@dataclass
class TransportDelayFrame(SystemFrame):
    """The transport's delays that no frame of the pipeline is stamped with.

    The input transport sends one after each pause the VAD reports; the turn metrics
    count the user's speech as having ended `uplink_s` before it reached the VAD, and
    the bot's first audio as reaching the listener `downlink_s` after it was written.

    Parameters:
        uplink_s: The user's last words' wait before the transport handed them on.
        downlink_s: The wait of audio written to the transport before it is heard.
    """

    uplink_s: float
    downlink_s: float
