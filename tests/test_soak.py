"""The short soak: twenty conversations through the real SFU leave nothing behind.

The same code as `python -m bench soak` (which runs 200 and more), so the benchmark
cannot drift from the helpers it shares with these tests.
"""

import pytest

from bench.soak import SoakOptions, run_soak

pytestmark = pytest.mark.e2e

RSS_GROWTH_BOUND_PCT = 10.0  # the benchmark's goal is 5 %; a short run is noisier


@pytest.mark.timeout(900)
async def test_twenty_conversations_leave_no_process_fd_room_or_session_behind(tmp_path):
    options = SoakOptions(sequential=14, parallel=3, parallel_total=6, warmup=1, max_minutes=12)
    report = await run_soak(options, tmp_path)
    print("\n" + "\n".join(report.lines()))

    assert report.conversations == 20 and not report.failures, report.failures
    # What is left is the warm pool's standby bot (a fork: it keeps its fork server's
    # command line), and the detector does see it; the fork server itself is expected.
    assert report.leaked_processes == 0
    assert len(report.processes_left) == 1 and "-m bot --" in report.processes_left[0]
    assert report.fd_growth <= 0
    assert report.rss_growth_pct < RSS_GROWTH_BOUND_PCT
    assert report.rooms_left == 0
    assert report.sessions_left == 0
