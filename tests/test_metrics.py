"""`GET /metrics`: who may read it, what the server counts, and what its bots report.

The bots are the stand-in (`tests/standin_bot.py --turns N`), real child processes that
record turns through the same histogram code as the real bot, into the server's
multiprocess directory; the LiveKit suite scrapes the real bots with a real Prometheus.
"""

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from bot.settings import SettingsError, load_settings
from tests.conftest import ADMIN, ADMIN_TOKEN, REMOTE, SECRETS, STANDIN_BOT, ApiFactory

pytestmark = pytest.mark.server

# Every label a metric may carry, and every value it may take: closed vocabularies only.
ALLOWED_LABELS: dict[str, Callable[[str], bool]] = {
    "pool": lambda v: v in {"warm", "cold"},
    "reason": lambda v: (
        v
        in {"spawn_failed", "join_timeout", "reported_failure", "exited_before_joining", "crashed"}
    ),
    "status": lambda v: v.isdigit() and len(v) == 3,
    "endpoint": lambda v: v in {"/connect", "/token"},
    "engine": lambda v: v in {"stt", "llm", "tts"},
    "kind": lambda v: v in {"timeout", "status", "connection", "other"},
    "le": lambda v: v == "+Inf" or float(v) >= 0,
}


def scrape(client: TestClient) -> dict[tuple[str, frozenset], float]:
    """{(sample name, labels): value} of everything `/metrics` serves."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


def test_metrics_are_served_to_loopback_or_the_admin_bearer(api: ApiFactory) -> None:
    assert api(admin_token=ADMIN_TOKEN).get("/metrics").status_code == 200
    remote = api(client=REMOTE, admin_token=ADMIN_TOKEN)
    refused = remote.get("/metrics")
    assert refused.status_code == 401 and refused.json()["reason"] == "unauthorized"
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    wrong = remote.get("/metrics", headers={"Authorization": "Bearer not-the-admin-token"})
    assert wrong.status_code == 401
    assert remote.get("/metrics", headers=ADMIN).status_code == 200
    proxied = api(admin_token=ADMIN_TOKEN).get("/metrics", headers={"X-Forwarded-For": "1.2.3.4"})
    assert proxied.status_code == 401
    assert api(client=REMOTE).get("/metrics").status_code == 403


def test_sessions_connects_and_the_bots_turns_are_counted_without_names(
    api: ApiFactory,
) -> None:
    client = api(
        admin_token=ADMIN_TOKEN,
        bot_command=f"{STANDIN_BOT} --turns 2 --exit-after 0.5",
        rate_limit_per_minute=3,
    )
    secret_room, secret_identity = "kitchen-of-ada-lovelace", "ada-lovelace-private"
    assert (
        client.post("/connect", json={"room": secret_room, "identity": secret_identity})
    ).status_code == 200
    assert client.post("/connect", json={"room": "not a room!"}).status_code == 422
    assert client.post("/connect", json={"identity": "grace-hopper-private"}).status_code == 200
    assert client.post("/connect").status_code == 429

    # The bots exit on their own; what they recorded outlives them.
    wait_for(lambda: not client.get("/sessions", headers=ADMIN).json(), 10, "the bots to exit")
    samples = scrape(client)
    assert value(samples, "voice_agent_turns_total") == 4
    assert value(samples, "voice_agent_voice_to_voice_seconds_count") == 4
    # 501 and 502 ms: past the 500 ms bucket, inside the 525 ms one.
    assert value(samples, "voice_agent_voice_to_voice_seconds_bucket", le="0.5") == 0
    assert value(samples, "voice_agent_voice_to_voice_seconds_bucket", le="0.525") == 4
    assert value(samples, "voice_agent_llm_ttft_seconds_count") == 0

    assert value(samples, "voice_agent_connect_responses_total", status="200") == 2
    assert value(samples, "voice_agent_connect_responses_total", status="422") == 1
    assert value(samples, "voice_agent_connect_responses_total", status="429") == 1
    assert value(samples, "voice_agent_rate_limited_total", endpoint="/connect") == 1
    assert value(samples, "voice_agent_sessions_started_total", pool="cold") == 2
    assert value(samples, "voice_agent_bot_start_seconds_count", pool="cold") == 2
    assert value(samples, "voice_agent_sessions_active") == 0

    text = client.get("/metrics").text
    for name in (secret_room, secret_identity, "grace-hopper", "kitchen", "ada"):
        assert name not in text
    for _, labels in samples:
        for label, label_value in labels:
            assert label in ALLOWED_LABELS, f"unexpected label {label}"
            assert ALLOWED_LABELS[label](label_value), f"{label}={label_value!r}"


def test_live_sessions_and_the_warm_pool_are_gauged(api: ApiFactory) -> None:
    client = api(admin_token=ADMIN_TOKEN, bot_warm_pool=1)
    wait_for(lambda: value(scrape(client), "voice_agent_warm_pool_bots") == 1, 10, "a standby bot")
    client.post("/connect")
    samples = scrape(client)
    assert value(samples, "voice_agent_sessions_active") == 1
    assert value(samples, "voice_agent_sessions_started_total", pool="warm") == 1


def failures(client: TestClient, reason: str) -> float:
    return value(scrape(client), "voice_agent_sessions_failed_total", reason=reason)


def test_failed_sessions_are_counted_by_reason(api: ApiFactory) -> None:
    never_joins = api(
        admin_token=ADMIN_TOKEN,
        bot_command=f"{STANDIN_BOT} --never-join",
        bot_start_timeout_s=0.5,
        bot_stop_grace_s=0.5,
    )
    never_joins.post("/connect")
    wait_for(lambda: failures(never_joins, "join_timeout") == 1, 10, "the join timeout")

    dies_at_once = api(admin_token=ADMIN_TOKEN, bot_command=f"{sys.executable} -c 'exit(3)'")
    dies_at_once.post("/connect")
    wait_for(lambda: failures(dies_at_once, "exited_before_joining") == 1, 10, "the early exit")

    cannot_start = api(admin_token=ADMIN_TOKEN, bot_command="/nonexistent/bot")
    assert cannot_start.post("/connect").status_code == 503
    assert failures(cannot_start, "spawn_failed") == 1
    assert value(scrape(cannot_start), "voice_agent_connect_responses_total", status="503") == 1

    crashes = api(admin_token=ADMIN_TOKEN)
    crashes.post("/connect")
    wait_for(
        lambda: crashes.get("/sessions", headers=ADMIN).json()[0]["state"] == "running",
        10,
        "the bot to join",
    )
    os.kill(crashes.get("/sessions", headers=ADMIN).json()[0]["pid"], signal.SIGKILL)
    wait_for(lambda: failures(crashes, "crashed") == 1, 10, "the crash")
    assert failures(crashes, "join_timeout") == 0


def test_the_bots_metrics_folder_is_private_folded_as_bots_exit_and_removed(
    api: ApiFactory,
) -> None:
    client = api(admin_token=ADMIN_TOKEN, bot_command=f"{STANDIN_BOT} --turns 1 --exit-after 0.2")
    folder = client.app.state.metrics.bot_directory  # type: ignore[attr-defined]
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for _ in range(3):
        client.post("/connect")
    wait_for(lambda: not client.get("/sessions", headers=ADMIN).json(), 10, "the bots to exit")
    # Each reaped bot's files were folded into one archive per kind, counts intact.
    files = sorted(f.name for f in folder.iterdir())
    assert files == ["counter_archive.db", "histogram_archive.db"]
    samples = scrape(client)
    assert value(samples, "voice_agent_turns_total") == 3
    assert value(samples, "voice_agent_voice_to_voice_seconds_bucket", le="0.525") == 3
    client.__exit__(None, None, None)
    assert not folder.exists()


def test_a_bot_without_a_metrics_folder_runs_and_one_with_a_missing_folder_is_refused(
    tmp_path,
) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    done = subprocess.run(
        [*STANDIN_BOT.split(), "--room", "r", "--turns", "1", "--exit-after", "0"],
        env=env,
        cwd=os.getcwd(),
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    with pytest.raises(SettingsError, match="PROMETHEUS_MULTIPROC_DIR is invalid"):
        load_settings(
            _env_file=None,
            livekit_url="ws://127.0.0.1:7880",
            prometheus_multiproc_dir=str(tmp_path / "missing"),
            **SECRETS,
        )
