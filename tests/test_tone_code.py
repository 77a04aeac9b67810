"""The tone code tests hear words by: a beep split by a late packet is still one word."""

import numpy as np
import pytest

from engines import tone

pytestmark = pytest.mark.unit

RATE = 24000


def split_by_a_late_packet(pcm: bytes, at_s: float, hole_s: float) -> bytes:
    """`pcm` as a receiver plays it when packets stop at `at_s` and resume `hole_s` later.

    The receiver conceals the missing audio with a fading copy of the last 10 ms (as
    WebRTC's NetEq expand does), goes quiet, then plays the late audio from where it
    stopped: the beep's rest comes after a gap.
    """
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)
    cut, period = int(at_s * RATE), RATE // 100
    last = samples[cut - period : cut]
    fading = np.concatenate([last * 0.7**k for k in range(int(hole_s * 100))])
    played = np.concatenate([samples[:cut], fading, samples[cut:]])
    return played.astype(np.int16).tobytes()


def test_a_beep_split_by_a_late_packet_is_heard_as_one_word() -> None:
    reply = "Quarter past nine."
    # "past" starts at 0.15 s; its packets stop 60 ms into it.
    heard = split_by_a_late_packet(tone.encode(reply, RATE), at_s=0.21, hole_s=0.08)
    assert tone.decode(heard, RATE) == tone.code(reply)


def test_a_word_said_twice_is_heard_twice() -> None:
    assert tone.decode(tone.encode("very very good", RATE), RATE) == tone.code("very very good")


def test_a_word_replayed_after_a_pause_is_heard_twice() -> None:
    """A paused reply that resumes a little before where it stopped repeats a word."""
    past = tone.encode("past", RATE)
    pause = bytes(int(0.4 * RATE) * 2)
    heard = tone.encode("quarter", RATE) + past[: len(past) // 2] + pause + past
    assert tone.decode(heard, RATE) == tone.code("quarter past past")
