"""docker-compose.yml against what the code and livekit-server accept (Docker is not needed).

Compose cannot run here, so the file could drift from the code unnoticed: these checks
read it as Compose would (variables at their defaults) and hold each service to the
entry points, settings and SFU configuration the rest of the repository defines.
"""

import json
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from bot.__main__ import parse_args
from bot.settings import Settings
from tests.livekit_server import BINARY

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
# What Compose substitutes for `${NAME:-default}` when NAME is unset.
VARIABLE = re.compile(r"\$\{(\w+):-([^}]*)\}")
# Settings the compose file leaves to `.env` that have no default.
REQUIRED = {"cerebras_api_key": "not-a-key"}


def interpolated(text: str) -> str:
    return VARIABLE.sub(lambda match: match.group(2), text)


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    compose = yaml.safe_load(interpolated((ROOT / "docker-compose.yml").read_text()))
    return compose["services"]


def ours(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The services built from this repository's Dockerfile."""
    return {name: s for name, s in services.items() if s.get("build") == "."}


def livekit_nodes(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services.items() if s.get("image", "").startswith("livekit/")}


def image_command() -> list[str]:
    """The Dockerfile's CMD, what a service without `command` runs."""
    (line,) = [ln for ln in (ROOT / "Dockerfile").read_text().splitlines() if ln.startswith("CMD")]
    return json.loads(line.removeprefix("CMD"))


def accepted(command: list[str]) -> bool:
    """Whether a command is one of the repository's entry points with arguments it takes."""
    match command:
        case ["python", "-m", "server"]:
            return True
        case ["python", "-m", "bot", "worker"]:
            return True
        case ["python", "-m", "bot", *args]:
            try:
                parse_args(args)
            except SystemExit:
                return False
            return True
    return False


def redis_address(services: dict[str, dict[str, Any]]) -> str:
    command = services["redis"]["command"]
    return f"{command[command.index('--bind') + 1]}:{command[command.index('--port') + 1]}"


def test_our_services_run_real_entry_points(services: dict[str, dict[str, Any]]) -> None:
    commands = {name: s.get("command", image_command()) for name, s in ours(services).items()}
    assert {"python -m bot worker", "python -m server"} <= {" ".join(c) for c in commands.values()}
    assert all(accepted(c) for c in commands.values()), commands


def test_our_services_environment_is_valid_settings(services: dict[str, dict[str, Any]]) -> None:
    for name, service in ours(services).items():
        env = service["environment"]
        unknown = {key for key in env if key.lower() not in Settings.model_fields}
        assert not unknown, f"{name}: {unknown} are not settings (bot/settings.py)"
        values = {key.lower(): value for key, value in env.items()}
        Settings(_env_file=None, **{**REQUIRED, **values})  # type: ignore[call-arg]


def test_livekit_nodes_share_redis_and_keys_on_distinct_ports(
    services: dict[str, dict[str, Any]],
) -> None:
    nodes = livekit_nodes(services)
    assert len(nodes) >= 2
    configs = [yaml.safe_load(s["environment"]["LIVEKIT_CONFIG"]) for s in nodes.values()]
    tcp = [port for c in configs for port in (c["port"], c["rtc"]["tcp_port"])]
    assert len(tcp) == len(set(tcp)), tcp
    udp = sorted((c["rtc"]["port_range_start"], c["rtc"]["port_range_end"]) for c in configs)
    assert all(end < start for (_, end), (start, _) in zip(udp, udp[1:], strict=False)), udp
    assert {c["redis"]["address"] for c in configs} == {redis_address(services)}
    keys = {json.dumps(c["keys"], sort_keys=True) for c in configs}
    for service in ours(services).values():
        env = service["environment"]
        assert keys == {json.dumps({env["LIVEKIT_API_KEY"]: env["LIVEKIT_API_SECRET"]})}


def test_our_services_reach_a_node_and_redis(services: dict[str, dict[str, Any]]) -> None:
    nodes = livekit_nodes(services)
    ports = {yaml.safe_load(s["environment"]["LIVEKIT_CONFIG"])["port"] for s in nodes.values()}
    for name, service in ours(services).items():
        env = service["environment"]
        assert urlsplit(env["LIVEKIT_URL"]).port in ports, name
        if "REDIS_URL" in env:
            assert urlsplit(env["REDIS_URL"]).netloc == redis_address(services), name
        assert set(service.get("depends_on", [])) <= set(services), name


def test_livekit_server_takes_each_node_as_configured(
    services: dict[str, dict[str, Any]],
) -> None:
    """The installed livekit-server reads each node's config and flags; the image matches it."""
    if not BINARY.exists():
        pytest.skip(f"{BINARY} is missing: run scripts/install-livekit-server")
    version = subprocess.run(
        [BINARY, "--version"], capture_output=True, text=True, timeout=30
    ).stdout.split()[-1]
    for name, service in livekit_nodes(services).items():
        assert service["image"].endswith(f":v{version}"), name
        config = service["environment"]["LIVEKIT_CONFIG"]
        ports = subprocess.run(
            [BINARY, *service["command"], "ports"],
            env={"LIVEKIT_CONFIG": config},
            capture_output=True,
            text=True,
            timeout=30,
        )
        port = yaml.safe_load(config)["port"]
        assert f"{port} - HTTP service" in ports.stdout, f"{name}: {ports.stdout}{ports.stderr}"
