"""The load a worker host reports, under livekit-agents 1.8.9's availability rule.

`takes_another` restates `AgentServer._is_available` (worker.py): a request is answered
while the load plus the requests already being answered stays under the threshold.
"""

import pytest

from bot.job_slots import JobSlots
from bot.worker import LOAD_CEILING, load_threshold, worker_load

pytestmark = pytest.mark.unit

# livekit-server's default agents.target_load: a worker at or above it is never offered a job.
TARGET_LOAD = 0.7


def takes_another(active: int, answering: int, max_jobs: int, idle: int) -> bool:
    """livekit-agents' rule: effective load (running + requests being answered) < threshold."""
    load = worker_load(active, max_jobs)
    per_job = load / active if active else load_threshold(max_jobs) / max(idle, 1)
    return load + answering * per_job < load_threshold(max_jobs)


@pytest.mark.parametrize("max_jobs", [1, 2, 3, 4, 7, 10, 33, 100])
def test_a_worker_takes_exactly_max_jobs_one_at_a_time(max_jobs: int) -> None:
    assert all(takes_another(n, 0, max_jobs, idle=2) for n in range(max_jobs))
    assert not takes_another(max_jobs, 0, max_jobs, idle=2)


@pytest.mark.parametrize("max_jobs", [1, 4, 10, 100])
def test_a_full_worker_reports_less_than_the_sfus_target_load(max_jobs: int) -> None:
    assert worker_load(max_jobs, max_jobs) == pytest.approx(LOAD_CEILING)
    assert load_threshold(max_jobs) < worker_load(max_jobs, max_jobs) < TARGET_LOAD


@pytest.mark.parametrize("max_jobs", [4, 10])
def test_requests_being_answered_count_as_jobs(max_jobs: int) -> None:
    # With jobs running, each request in flight counts as one more job.
    assert takes_another(1, max_jobs - 2, max_jobs, idle=2)
    assert not takes_another(1, max_jobs - 1, max_jobs, idle=2)


@pytest.mark.parametrize("idle", [1, 2, 3])
def test_an_empty_worker_answers_as_many_requests_at_once_as_it_has_idle_processes(
    idle: int,
) -> None:
    answered_at_once = next(n for n in range(100) if not takes_another(0, n, 10, idle))
    assert answered_at_once == idle


def test_a_burst_as_a_job_starts_is_held_to_max_jobs() -> None:
    """Requests being accepted count with the running jobs, whatever livekit-agents saw."""
    slots = JobSlots(4)
    assert slots.take("a", running=[])
    slots.release("a")  # "a" runs now
    burst = [slots.take(job, running=["a"]) for job in "bcde"]
    assert burst == [True, True, True, False]
    slots.release("b")
    assert not slots.take("e", running=["a", "b"]), "b runs: still four"
    assert slots.take("e", running=["b"]), "a ended: a slot is free"
