"""The bot fork server: single-threaded when it forks, and its death costs no /connect.

Every other server test forks its stand-in bots through the fork server too (BOT_FORK_SERVER
is on by default and the stand-in serves forks), so their exit codes, relayed logs,
signals and teardown are checked on the forked path; the e2e tests fork the real bot.
"""

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from bot.fork_server import NAME as FORK_SERVER_NAME
from bot.launch import bot_environment
from server.fork_server import ForkServer, ForkServerError
from server.forked_process import fork_bot
from tests.conftest import ADMIN_TOKEN, STANDIN_BOT, ApiFactory, LogCapture, server_settings
from tests.test_server_sessions import alive, pids, wait_until

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parent.parent


def _comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


async def test_the_real_bots_fork_server_forks_with_one_thread_and_reports_exits(
    captured_logs: LogCapture,
) -> None:
    env = bot_environment(server_settings())
    env["PYTHONPATH"] = str(ROOT)
    server = ForkServer(f"{sys.executable} -m bot", env)
    await server.start(timeout_s=60)
    try:
        assert server.pid is not None
        assert _threads(server.pid) == 1, "imports started a thread (onnxruntime, BLAS, FFI?)"
        control_r, control_w = os.pipe()
        bot = await fork_bot(server, control_w, 1 << 20)
        os.close(control_w)
        assert bot.stdin is not None and bot.stderr is not None
        # Told apart by name (the soak bench counts bots so): forks keep the command line.
        assert _comm(server.pid) == FORK_SERVER_NAME
        wait_until(lambda: _comm(bot.pid) != FORK_SERVER_NAME, timeout=5)
        bot.stdin.close()  # no room: a standby bot leaves quietly
        code = await asyncio.wait_for(bot.wait(), 30)
        output = await bot.stderr.read()
        os.close(control_r)
        assert code == 0 and bot.pid != server.pid
        assert b"No room given, leaving" in output
        assert _threads(server.pid) == 1
    finally:
        await server.close()
    assert not alive(server.pid)


async def test_a_fork_server_with_a_second_thread_is_not_used() -> None:
    env = bot_environment(server_settings())
    server = ForkServer(f"{STANDIN_BOT} --preload-thread", env)
    with pytest.raises(ForkServerError, match="2 threads"):
        await server.start(timeout_s=20)
    assert server.pid is not None and not alive(server.pid)


def fork_server_pids(logs: LogCapture) -> list[int]:
    return [r["pid"] for r in logs.records() if r["message"].startswith("Fork server ready")]


def test_killing_the_fork_server_costs_no_connect_and_no_running_bot(
    api: ApiFactory, captured_logs: LogCapture
) -> None:
    client = api(admin_token=ADMIN_TOKEN, bot_command=f"{STANDIN_BOT} --exit-after 1.5")
    wait_until(lambda: len(fork_server_pids(captured_logs)) == 1, timeout=5)
    (first,) = fork_server_pids(captured_logs)
    running = client.post("/connect").json()["room"]
    running_pid = pids(client)[running]
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: not alive(first), timeout=5)
    assert client.post("/connect").status_code == 200
    assert len(fork_server_pids(captured_logs)) == 2, "a new fork server started"
    assert alive(running_pid), "the bot forked before the kill runs on"
    assert all(alive(pid) for pid in pids(client).values())
    wait_until(lambda: not pids(client), timeout=8)
    assert not alive(running_pid)
