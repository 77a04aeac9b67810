"""What a listener's tone-decoded words say about a reply that was paused and resumed."""

# Four-word sentences of distinct tones: the chunker sends each to the TTS on its own,
# and the order heard tells what was skipped or repeated.
TONE_SENTENCES = (
    "Amber basil cedar dahlia. Ember garnet hazel indigo. Juniper lilac marble orchid. "
    "Pepper raven thistle umber. Violet willow yarrow zinnia. Acorn bramble clover daisy."
)


def whole_with_one_backup(heard: list[int], expected: list[int], max_repeat: int = 3) -> bool:
    """Whether the reply was heard in order, nothing lost, with at most one short repeat.

    A resumed reply plays again from a little before the pause, so the words just
    before it may be heard twice; none may be missing, and nothing else may be heard.
    """
    return heard == expected or any(
        heard == expected[:i] + expected[i - k :]
        for i in range(1, len(expected))
        for k in range(max_repeat + 1)
    )


def longest_silence(times: list[float]) -> tuple[float, float]:
    """The longest gap between consecutive loud moments: (start, length) in seconds."""
    gaps = [(a, b - a) for a, b in zip(times, times[1:], strict=False)]
    return max(gaps, key=lambda gap: gap[1], default=(0.0, 0.0))


def last_silence(times: list[float], quiet_s: float = 0.3) -> float | None:
    """Where the last gap of at least `quiet_s` between loud moments begins, if any."""
    gaps = [a for a, b in zip(times, times[1:], strict=False) if b - a >= quiet_s]
    return gaps[-1] if gaps else None


def first_silence(times: list[float], since: float, quiet_s: float) -> tuple[float, float] | None:
    """The first gap of at least `quiet_s` between loud moments after `since`: (start, length)."""
    later = [t for t in times if t >= since]
    gaps = [(a, b - a) for a, b in zip(later, later[1:], strict=False) if b - a >= quiet_s]
    return gaps[0] if gaps else None
