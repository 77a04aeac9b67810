"""Bot processes under the session server: one per room, capacity, crashes, timeouts, shutdown.

The bot is the stand-in `tests/standin_bot.py` (BOT_COMMAND), a real child process that
logs like the real bot; the LiveKit end-to-end suite runs the real one.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from bot.launch import env_value
from bot.settings import Settings
from server.cpu_busy import CpuBusy
from server.process_backend import ProcessBackend
from server.server_metrics import ServerMetrics
from server.session_manager import SessionManager
from tests.conftest import (
    ADMIN,
    ADMIN_TOKEN,
    SECRETS,
    STANDIN_BOT,
    ApiFactory,
    LogCapture,
    server_settings,
)

pytestmark = pytest.mark.server
ROOT = Path(__file__).resolve().parent.parent


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_until(condition: Callable[[], bool], timeout: float) -> float:
    """Poll until `condition` holds; return how long it took, or fail the test."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(0.02)
    return time.monotonic() - start


def pids(client: httpx.Client | TestClient) -> dict[str, int]:
    return {s["room"]: s["pid"] for s in client.get("/sessions", headers=ADMIN).json()}


def session_manager(settings: Settings) -> SessionManager:
    metrics = ServerMetrics()
    return SessionManager(settings, ProcessBackend(settings, metrics), metrics)


async def test_concurrent_connects_for_one_room_start_one_bot(captured_logs: LogCapture) -> None:
    manager = session_manager(server_settings())
    sessions = await asyncio.gather(*(manager.open("den", "ada") for _ in range(5)))
    try:
        assert len({s.session_id for s in sessions}) == 1
        assert len(manager.sessions()) == 1
        assert sessions[0].bot is not None
        await asyncio.wait_for(sessions[0].bot.status.joined.wait(), 10)
    finally:
        await manager.shutdown()
    started = [r for r in captured_logs.records() if r["message"] == "Bot started"]
    assert len(started) == 1


def test_connect_twice_for_one_room_starts_one_bot(api: ApiFactory) -> None:
    client = api(admin_token=ADMIN_TOKEN)
    first = client.post("/connect", json={"room": "den", "identity": "ada"}).json()
    second = client.post("/connect", json={"room": "den", "identity": "ada"}).json()
    assert first["session_id"] == second["session_id"]
    assert len(pids(client)) == 1


def test_one_over_capacity_gets_exactly_one_503(api: ApiFactory) -> None:
    client = api(admin_token=ADMIN_TOKEN, max_concurrent_sessions=3)
    responses = [client.post("/connect") for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 503]
    full = responses[-1]
    assert full.json()["reason"] == "at_capacity"
    assert "busy" in full.json()["detail"]
    assert int(full.headers["Retry-After"]) > 0
    running = pids(client)
    assert len(running) == 3 and all(alive(pid) for pid in running.values())


def test_killed_bot_frees_its_slot_within_2s(api: ApiFactory) -> None:
    client = api(admin_token=ADMIN_TOKEN, max_concurrent_sessions=1)
    room = client.post("/connect").json()["room"]
    pid = pids(client)[room]
    assert client.post("/connect").status_code == 503
    os.kill(pid, signal.SIGKILL)
    freed_after = wait_until(lambda: client.get("/ready").status_code == 200, timeout=2)
    print(f"slot freed {freed_after * 1000:.0f} ms after SIGKILL")
    assert not alive(pid)
    assert client.post("/connect").status_code == 200


def test_bot_that_never_joins_is_killed_after_the_timeout(
    api: ApiFactory, captured_logs: LogCapture
) -> None:
    client = api(
        admin_token=ADMIN_TOKEN,
        bot_command=f"{STANDIN_BOT} --never-join --ignore-sigterm",
        bot_start_timeout_s=1,
        bot_stop_grace_s=0.5,
    )
    room = client.post("/connect").json()["room"]
    pid = pids(client)[room]
    assert client.get("/sessions", headers=ADMIN).json()[0]["state"] == "starting"
    wait_until(lambda: not pids(client), timeout=5)
    assert not alive(pid)
    errors = [r for r in captured_logs.records() if r["level"] == "ERROR"]
    assert any("did not join" in r["message"] and r["room"] == room for r in errors)


def test_bot_that_exits_frees_its_slot(api: ApiFactory) -> None:
    client = api(admin_token=ADMIN_TOKEN, bot_command=f"{STANDIN_BOT} --exit-after 0.2")
    room = client.post("/connect").json()["room"]
    pid = pids(client)[room]
    wait_until(lambda: not pids(client), timeout=5)
    assert not alive(pid)


def test_unstartable_bot_command_is_a_clear_503(api: ApiFactory) -> None:
    client = api(bot_command="/nonexistent/voice-bot")
    response = client.post("/connect")
    assert response.status_code == 503
    assert response.json()["reason"] == "bot_start_failed"
    assert client.get("/ready").status_code == 200


def test_delete_kills_a_bot_that_ignores_sigterm(api: ApiFactory) -> None:
    client = api(
        admin_token=ADMIN_TOKEN,
        bot_command=f"{STANDIN_BOT} --ignore-sigterm",
        bot_stop_grace_s=0.5,
    )
    room = client.post("/connect").json()["room"]
    pid = pids(client)[room]
    wait_until(lambda: client.get("/sessions", headers=ADMIN).json()[0]["state"] == "running", 5)
    assert client.delete(f"/sessions/{room}", headers=ADMIN).status_code == 204
    assert not alive(pid)
    assert pids(client) == {}


def test_bot_gets_only_its_environment(api: ApiFactory, captured_logs: LogCapture) -> None:
    client = api(admin_token=ADMIN_TOKEN, log_format="text")
    room = client.post("/connect").json()["room"]
    wait_until(lambda: "env_names" in captured_logs.text, timeout=5)
    record = next(r for r in captured_logs.records() if "env_names" in r)
    names = set(record["env_names"].split(","))
    assert {"LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "CEREBRAS_API_KEY"} <= names
    assert {"VOXTRAL_HOST", "CHATTERBOX_HOST", "PATH"} <= names
    assert not names & {"ADMIN_TOKEN", "BOT_COMMAND", "MAX_CONCURRENT_SESSIONS"}
    assert record["room"] == room and record["source"] == "bot"


def test_bot_log_lines_are_tagged_and_redacted(api: ApiFactory, captured_logs: LogCapture) -> None:
    client = api(bot_command=f"{STANDIN_BOT} --quote-secret")
    body = client.post("/connect").json()
    wait_until(lambda: "Joined the room" in captured_logs.text, timeout=5)
    relayed = [r for r in captured_logs.records() if r.get("source") == "bot"]
    assert relayed and all(r["room"] == body["room"] for r in relayed)
    assert any("[REDACTED]" in r["message"] for r in relayed)
    for secret in SECRETS.values():
        assert secret not in captured_logs.text


def test_warm_bot_takes_the_room_and_a_new_one_warms_up_once_it_is_in(
    api: ApiFactory, captured_logs: LogCapture
) -> None:
    join_after_s = 0.6
    client = api(
        admin_token=ADMIN_TOKEN,
        bot_warm_pool=1,
        bot_command=f"{STANDIN_BOT} --join-after {join_after_s}",
    )
    wait_until(lambda: len(standby_pids(captured_logs)) == 1, timeout=5)
    (warm_pid,) = standby_pids(captured_logs)
    asked_at = time.time()
    room = client.post("/connect").json()["room"]
    assert pids(client)[room] == warm_pid
    wait_until(lambda: "Joined the room" in captured_logs.text, timeout=5)
    joined = next(r for r in captured_logs.records() if r["message"] == "Joined the room")
    assert joined["room"] == room
    wait_until(lambda: len(standby_pids(captured_logs)) == 2, timeout=5)
    replacement = standby_pids(captured_logs)[1]
    assert alive(replacement) and replacement != warm_pid
    # Warming it sooner would take CPU from the bot that is joining.
    (warming,) = [
        r
        for r in captured_logs.records()
        if r["message"] == "Standby bot started" and r["pid"] == replacement
    ]
    assert datetime.fromisoformat(warming["ts"]).timestamp() - asked_at >= join_after_s - 0.1
    os.kill(replacement, signal.SIGKILL)
    wait_until(lambda: len(standby_pids(captured_logs)) == 3, timeout=5)
    assert "A standby bot exited" in captured_logs.text


def standby_pids(logs: LogCapture) -> list[int]:
    return [r["pid"] for r in logs.records() if r["message"] == "Standby bot started"]


def start_server(port: int, **overrides: object) -> subprocess.Popen:
    """`python -m server` as a child process, JSON logs on its stderr."""
    settings = server_settings(
        token_server_port=port, admin_token=ADMIN_TOKEN, log_format="json", **overrides
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "server"],
        env={**os.environ, **_as_environment(settings)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until(lambda: _reachable(f"http://127.0.0.1:{port}/health"), timeout=20)
    return server


def test_server_shutdown_leaves_no_child_behind(unused_tcp_port: int) -> None:
    server = start_server(
        unused_tcp_port,
        bot_command=f"{STANDIN_BOT} --ignore-sigterm",
        bot_stop_grace_s=1,
        bot_warm_pool=1,
        drain_timeout_s=0,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{unused_tcp_port}") as client:
            for _ in range(3):
                assert client.post("/connect").status_code == 200
            running = list(pids(client).values())
        assert len(running) == 3 and all(alive(pid) for pid in running)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=15)
        log = server.stderr.read() if server.stderr else ""
        standby = [
            json.loads(line)["pid"] for line in log.splitlines() if "Standby bot started" in line
        ]
        assert standby, "the warm pool was filled"
        fork_servers = [
            json.loads(line)["pid"] for line in log.splitlines() if "Fork server ready" in line
        ]
        assert len(fork_servers) == 1, "the bots were forked"
        assert [pid for pid in running + standby + fork_servers if alive(pid)] == []
        assert "All bots stopped" in log
        assert ADMIN_TOKEN not in log and SECRETS["livekit_api_secret"] not in log
    finally:
        if server.poll() is None:
            server.kill()


def drain(port: int, server: subprocess.Popen) -> tuple[list[dict], float]:
    """Two conversations, SIGTERM, and what /connect and /ready answer meanwhile.

    Returns the server's log records and how long it took to exit after the signal.
    """
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        for _ in range(2):
            assert client.post("/connect").status_code == 200
        running = list(pids(client).values())
        signalled = time.monotonic()
        server.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        refused = client.post("/connect")
        assert refused.status_code == 503 and refused.json()["reason"] == "shutting_down"
        assert int(refused.headers["Retry-After"]) > 0
        assert client.get("/ready").status_code == 503
        assert client.get("/health").status_code == 200
    server.wait(timeout=30)
    took = time.monotonic() - signalled
    log = server.stderr.read() if server.stderr else ""
    assert [pid for pid in running if alive(pid)] == []
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    standby = [r for r in records if r["message"] == "Standby bot started"]
    assert standby and not any(alive(r["pid"]) for r in standby)
    draining = next(i for i, r in enumerate(records) if r["message"].startswith("Draining"))
    assert "Standby bot started" not in [r["message"] for r in records[draining:]]
    return records, took


def test_shutdown_lets_live_conversations_end(unused_tcp_port: int) -> None:
    server = start_server(
        unused_tcp_port,
        bot_command=f"{STANDIN_BOT} --exit-after 3",
        bot_warm_pool=1,
        drain_timeout_s=20,
    )
    try:
        records, took = drain(unused_tcp_port, server)
    finally:
        if server.poll() is None:
            server.kill()
    messages = [r["message"] for r in records]
    assert "Shutdown: 2 conversation(s) ended on their own, 0 cut" in messages
    assert took < 20, "the server waited for the conversations, not for DRAIN_TIMEOUT_S"
    exits = [m for m in messages if m.startswith("Bot exited (0)")]
    assert len(exits) == 2 and all(m.endswith(": room_empty") for m in exits), exits


def test_shutdown_cuts_conversations_still_live_after_the_drain_timeout(
    unused_tcp_port: int,
) -> None:
    server = start_server(unused_tcp_port, bot_warm_pool=1, drain_timeout_s=1.5, bot_stop_grace_s=1)
    try:
        records, took = drain(unused_tcp_port, server)
    finally:
        if server.poll() is None:
            server.kill()
    cut = [r for r in records if r["message"].startswith("Shutdown:")]
    assert [(r["level"], r["message"]) for r in cut] == [
        ("WARNING", "Shutdown: 0 conversation(s) ended on their own, 2 cut")
    ]
    assert 1.5 <= took < 1.5 + 8


def test_server_refuses_bad_configuration_with_exit_2(tmp_path: os.PathLike) -> None:
    env = {"PATH": os.environ["PATH"], "LIVEKIT_URL": "http://wrong", "TOKEN_SERVER_PORT": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "server"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "LIVEKIT_URL is invalid" in done.stderr and "LIVEKIT_API_KEY" in done.stderr
    assert "Traceback" not in done.stderr


def _reachable(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _as_environment(settings: Settings) -> dict[str, str]:
    """The settings as variables, as an operator's environment would carry them."""
    return {
        name.upper(): env_value(getattr(settings, name))
        for name in type(settings).model_fields
        if getattr(settings, name) is not None
    }


def test_a_bot_that_logs_nothing_still_counts_as_joined(
    api: ApiFactory, captured_logs: LogCapture
) -> None:
    """The server learns of the join on the control pipe: logging is no signal."""
    client = api(admin_token=ADMIN_TOKEN, bot_command=f"{STANDIN_BOT} --silent")
    client.post("/connect")
    wait_until(lambda: client.get("/sessions", headers=ADMIN).json()[0]["state"] == "running", 5)
    assert not [r for r in captured_logs.records() if r.get("source") == "bot"]


async def test_the_bot_receives_its_room_and_trace_context(captured_logs: LogCapture) -> None:
    settings = server_settings(bot_warm_pool=1)
    manager = session_manager(settings)
    await manager.start()
    carrier = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    try:
        warm = await manager.open("den", "ada", trace_context=carrier)
        cold = await manager.open("hall", "bob")
        for session in (warm, cold):
            assert session.bot is not None
            await asyncio.wait_for(session.bot.status.joined.wait(), 10)
    finally:
        await manager.shutdown()
    received = {
        r["assigned_room"]: json.loads(r["trace"])
        for r in captured_logs.records()
        if r["message"] == "assignment"
    }
    assert received == {"den": carrier, "hall": {}}


def test_a_bot_reporting_unreachable_livekit_frees_its_slot_at_once(
    api: ApiFactory, captured_logs: LogCapture
) -> None:
    client = api(
        admin_token=ADMIN_TOKEN,
        max_concurrent_sessions=1,
        bot_command=f"{STANDIN_BOT} --unreachable --ignore-sigterm",
        bot_start_timeout_s=30,
        bot_stop_grace_s=0.5,
    )
    room = client.post("/connect").json()["room"]
    freed_after = wait_until(lambda: client.get("/ready").status_code == 200, timeout=5)
    print(f"slot freed {freed_after * 1000:.0f} ms after /connect")
    errors = [r for r in captured_logs.records() if r["level"] == "ERROR" and r.get("room") == room]
    assert any(
        "Bot failed to start" in r["message"]
        and "livekit_unreachable" in r["message"]
        and "Could not reach LiveKit at ws://127.0.0.1:9" in r["message"]
        for r in errors
    ), errors


def test_a_real_bot_ignores_the_servers_dotenv_and_reports_unreachable_livekit(
    api: ApiFactory,
    captured_logs: LogCapture,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real bot, started by the server from a folder holding a `.env` it must not read."""
    (tmp_path / ".env").write_text("CHATTERBOX_TEMPERATURE=99\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    client = api(
        admin_token=ADMIN_TOKEN,
        max_concurrent_sessions=1,
        bot_command="python -m bot",
        livekit_url="ws://127.0.0.1:9",
        livekit_connect_timeout_s=2,
        bot_start_timeout_s=60,
    )
    started = time.monotonic()
    room = client.post("/connect").json()["room"]
    wait_until(lambda: client.get("/ready").status_code == 200, timeout=40)
    elapsed = time.monotonic() - started
    print(f"real bot: unreachable LiveKit reported and slot freed after {elapsed:.1f}s")
    ours = [r for r in captured_logs.records() if r.get("room") == room]
    failures = [r["message"] for r in ours if r["message"].startswith("Bot failed to start")]
    assert len(failures) == 1, [r["message"] for r in ours]
    assert failures[0].startswith(
        "Bot failed to start: Could not reach LiveKit at ws://127.0.0.1:9;"
    )
    assert failures[0].endswith("(LIVEKIT_CONNECT_TIMEOUT_S=2) (livekit_unreachable)")
    assert not any("CHATTERBOX_TEMPERATURE" in r["message"] for r in ours)
    assert elapsed < 60 / 2, "freed by the report, not by BOT_START_TIMEOUT_S"


def test_a_machine_too_busy_for_another_conversation_says_so(
    api: ApiFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With MAX_CPU_BUSY set, a new room is refused while the CPUs are busier than it.

    A conversation already under way still rejoins (a page reload), and the room is
    refused no longer once the CPUs have room again.
    """
    share = [0.5]
    monkeypatch.setattr(CpuBusy, "fraction", property(lambda _: share[0]))
    client = api(admin_token=ADMIN_TOKEN, max_cpu_busy=0.8)
    first = client.post("/connect", json={"room": "den", "identity": "ada"})
    assert first.status_code == 200, first.text
    assert client.get("/ready").json()["cpu_busy"] == 0.5
    share[0] = 0.93
    refused = client.post("/connect")
    assert refused.status_code == 503
    assert refused.json()["reason"] == "machine_busy"
    assert "busy" in refused.json()["detail"] and int(refused.headers["Retry-After"]) > 0
    ready = client.get("/ready")
    assert ready.status_code == 503 and ready.json()["cpu_busy"] == 0.93
    rejoined = client.post("/connect", json={"room": "den", "identity": "ada"})
    assert rejoined.json()["session_id"] == first.json()["session_id"]
    assert len(pids(client)) == 1
    share[0] = 0.6
    assert client.post("/connect").status_code == 200
    assert len(pids(client)) == 2


def test_without_max_cpu_busy_the_cpus_are_not_even_read(api: ApiFactory) -> None:
    client = api(max_concurrent_sessions=2)
    assert "cpu_busy" not in client.get("/ready").json()
    assert client.post("/connect").status_code == 200
