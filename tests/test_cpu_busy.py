"""The CPUs' busy share the session server refuses new sessions on (`MAX_CPU_BUSY`)."""

from pathlib import Path

import pytest

from server.cpu_busy import CpuBusy, read_cpu_times

pytestmark = pytest.mark.unit


class Machine:
    """/proc/stat's counters and a clock, advanced by hand."""

    def __init__(self) -> None:
        self.now, self.busy, self.total = 0.0, 0, 0

    def run(self, seconds: float, busy_share: float) -> None:
        ticks = round(100 * 2 * seconds)  # two cores at 100 ticks a second
        self.now += seconds
        self.busy += round(ticks * busy_share)
        self.total += ticks

    def read(self) -> tuple[int, int]:
        return self.busy, self.total


def sampled(machine: Machine, window_s: float) -> CpuBusy:
    cpu = CpuBusy(window_s, read=machine.read, clock=lambda: machine.now)
    cpu.sample()
    return cpu


def test_the_share_covers_the_last_window_only() -> None:
    machine = Machine()
    cpu = sampled(machine, window_s=10)
    assert cpu.fraction is None  # one sample says nothing yet
    for _ in range(30):  # half a minute idle
        machine.run(1, busy_share=0.05)
        cpu.sample()
    assert cpu.fraction == pytest.approx(0.05)
    for _ in range(10):  # then ten busy seconds: the idle half minute no longer dilutes them
        machine.run(1, busy_share=0.95)
        cpu.sample()
    assert cpu.fraction == pytest.approx(0.95)
    for _ in range(5):
        machine.run(1, busy_share=0.15)
        cpu.sample()
    assert cpu.fraction == pytest.approx((5 * 0.95 + 5 * 0.15) / 10)


def test_proc_stat_idle_and_iowait_are_not_busy(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal guest guest_nice
    stat.write_text("cpu  100 10 50 700 40 5 5 0 30 0\ncpu0 50 5 25 350 20 2 3 0 15 0\n")
    assert read_cpu_times(str(stat)) == (170, 910)


def test_this_machines_counters_read() -> None:
    busy, total = read_cpu_times()
    assert 0 < busy < total
