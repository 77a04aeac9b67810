"""The bench listener's view of what it heard: when the bot's audio came and went."""

import time

import numpy as np
import pytest

from bench.listener.listener import Listener
from tests.participant import Participant

pytestmark = pytest.mark.unit

FRAME = 240  # 10 ms at 24 kHz
SILENCE = bytes(FRAME * 2)
BEEP = (np.full(FRAME, 9000, dtype=np.int16)).tobytes()


def listener_hearing(frames: list[tuple[float, bytes]]) -> Listener:
    participant = Participant.__new__(Participant)  # no LiveKit room: only what it heard
    participant.heard = list(frames)
    return Listener(participant, "room", "greeting")


def test_sounds_are_found_as_frames_keep_arriving() -> None:
    listener = listener_hearing([(1.0, SILENCE), (1.01, BEEP), (1.02, SILENCE)])
    assert listener.first_sound(0.0) == 1.01
    assert listener.first_sound(1.01) is None  # strictly after
    listener.participant.heard += [(2.0, SILENCE), (2.01, BEEP), (2.02, BEEP)]
    assert listener.first_sound(1.01) == 2.01
    assert listener.sounds(1.5) == [2.01, 2.02]
    assert listener.sounds(0.0) == [1.01, 2.01, 2.02]


def test_quiet_since_counts_from_the_last_sound() -> None:
    now = time.monotonic()
    listener = listener_hearing([(now - 1.0, BEEP), (now - 0.2, SILENCE)])
    assert listener.quiet_since(0.5)
    listener.participant.heard.append((now - 0.1, BEEP))
    assert not listener.quiet_since(0.5)
    assert listener.quiet_since(0.05)
