"""Holds a reply's audio until the user's turn it answers has really ended.

With preemptive generation the LLM and the TTS start before the turn ends, so the
first audio is ready the moment it does. This gate, between the TTS and the output
transport, holds every frame of a reply that began while the user's turn was still
open; the turn's end (`UserStoppedSpeakingFrame`) releases it, a withdrawal
(`EagerEndOfTurnCancelFrame`) or an interruption discards it. Pipecat's
`SpeculationGate` makes the decisions; this processor only feeds it.
"""

from pipecat.frames.frames import (
    Frame,
    LLMFullResponseStartFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.turns.speculation_gate import SpeculationGate


class PreemptedReplyGate(FrameProcessor):
    """Plays a reply started before the turn ended only once the turn has ended."""

    def __init__(self, **kwargs) -> None:
        """Initialize the gate; arguments as `FrameProcessor`."""
        super().__init__(**kwargs)
        self._gate = SpeculationGate(name=f"{self}::SpeculationGate")
        self._user_turn_open = False

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Pass frames on, holding those of a reply that began during the user's turn."""
        await super().process_frame(frame, direction)
        if isinstance(frame, UserStartedSpeakingFrame):
            self._user_turn_open = True
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._user_turn_open = False
        elif isinstance(frame, LLMFullResponseStartFrame):
            # Only a reply that starts while the user is still in their turn is held.
            self._gate.begin_speculation(self._user_turn_open)
        for out, out_direction in self._gate.process(frame, direction):
            await self.push_frame(out, out_direction)
