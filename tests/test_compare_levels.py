"""How many questions each room asks at a concurrency level of the compare bench."""

import pytest

from bench.compare.scenarios import questions_per_room


@pytest.mark.parametrize(("rooms", "asks"), [(1, 20), (2, 10), (3, 7), (6, 4), (10, 3), (30, 3)])
def test_every_level_has_at_least_the_set_turns_and_each_room_its_own(
    rooms: int, asks: int
) -> None:
    # 3 questions a room, 20 turns a level at least: one room alone asks 20, not 3,
    # so its p95 is a percentile like the others', not its slowest turn.
    assert questions_per_room(rooms, turns=3, level_turns=20) == asks
    assert rooms * asks >= 20


def test_the_quick_run_asks_once_per_room() -> None:
    assert questions_per_room(2, turns=1, level_turns=1) == 1
