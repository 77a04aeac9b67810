"""Start the whole voice agent locally and stop it all on Ctrl-C.

`scripts/run` calls this after installing. It starts livekit-server (dev mode) unless
LIVEKIT_URL points elsewhere, a local engine for each of STT, TTS and LLM that `.env`
does not point to a remote service for, the session server, and the client's dev server,
then prints the URL to open. Every process it started is stopped when it stops.
"""

import argparse
import asyncio
import os
import secrets
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bot.launch import env_value
from bot.settings import Settings, SettingsError, configured_variables, load_settings

ROOT = Path(__file__).resolve().parent.parent
LIVEKIT = ROOT / ".tools" / "bin" / "livekit-server"
RUN_DIR = ROOT / ".run"
# What `livekit-server --dev` accepts.
DEV_KEY, DEV_SECRET = "devkey", "secret"
LOCAL_LLM_NAME = "local-llm"
STOP_GRACE_S = 10.0


def say(message: str) -> None:
    """Progress for the person running the command."""
    sys.stderr.write(f"==> {message}\n")
    sys.stderr.flush()


@dataclass
class Child:
    """One process the launcher owns, in its own process group, logging to a file."""

    name: str
    argv: list[str]
    ready_url: str | None = None
    ready_port: int | None = None
    cwd: Path = ROOT
    env: dict[str, str] = field(default_factory=dict)
    stop_grace_s: float = STOP_GRACE_S
    process: asyncio.subprocess.Process | None = None

    @property
    def log_path(self) -> Path:
        """Where its output goes."""
        return RUN_DIR / f"{self.name}.log"

    async def start(self) -> None:
        """Spawn it in a new session, output to its log file."""
        RUN_DIR.mkdir(exist_ok=True)
        log = self.log_path.open("w")
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            cwd=self.cwd,
            env={**os.environ, **self.env},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )

    async def wait_ready(self, timeout_s: float) -> None:
        """Until it answers, or fail with the end of its log."""
        assert self.process
        started = time.monotonic()
        async with aiohttp.ClientSession() as http:
            while time.monotonic() - started < timeout_s:
                if self.process.returncode is not None:
                    break
                if await self._answers(http):
                    say(f"{self.name} ready ({time.monotonic() - started:.1f}s)")
                    return
                await asyncio.sleep(0.2)
        tail = self.log_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{self.name} did not start; the end of {self.log_path}:\n{tail}")

    async def _answers(self, http: aiohttp.ClientSession) -> bool:
        try:
            if self.ready_url:
                async with http.get(self.ready_url) as response:
                    return response.status < 500
            if self.ready_port:
                _, writer = await asyncio.open_connection("127.0.0.1", self.ready_port)
                writer.close()
                return True
        except (aiohttp.ClientError, OSError):
            return False
        return True

    async def stop(self) -> None:
        """SIGTERM its group, SIGKILL what is left after the grace period, reap it."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), self.stop_grace_s)
        except TimeoutError:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


def port_is_free(port: int) -> bool:
    """Whether nothing listens on the loopback port yet."""
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def local_parts(given: set[str]) -> list[str]:
    """The parts `.env` (or the environment) leaves to this machine."""
    wanted = {
        "livekit": "LIVEKIT_URL",
        "stt": "VOXTRAL_HOST",
        "tts": "CHATTERBOX_HOST",
        "llm": "CEREBRAS_API_KEY",
    }
    return [part for part, variable in wanted.items() if variable not in given]


def local_overrides(
    local: list[str], livekit_port: int, llm_port: int, llm_key: str
) -> dict[str, object]:
    """Settings that point the session server and its bots at the local parts."""
    overrides: dict[str, object] = {}
    if "livekit" in local:
        overrides |= {
            "livekit_url": f"ws://127.0.0.1:{livekit_port}",
            "livekit_api_key": DEV_KEY,
            "livekit_api_secret": DEV_SECRET,
        }
    if "stt" in local:
        overrides["voxtral_host"] = "127.0.0.1"
    if "tts" in local:
        overrides["chatterbox_host"] = "127.0.0.1"
    if "llm" in local:
        overrides |= {
            "cerebras_api_key": llm_key,
            "cerebras_base_url": f"http://127.0.0.1:{llm_port}/v1",
            "cerebras_model": LOCAL_LLM_NAME,
        }
    return overrides


def children(settings: Settings, local: list[str], env: dict[str, str]) -> list[Child]:
    """What to start, in order."""
    python = sys.executable
    started: list[Child] = []
    if "livekit" in local:
        port = settings.local_livekit_port
        # Dev mode's layout (7880 signalling, 7881 TCP, 7882 UDP), moved with the port.
        config = f"port: {port}\nrtc:\n  tcp_port: {port + 1}\n  udp_port: {port + 2}\n"
        started.append(
            Child(
                "livekit-server",
                [str(LIVEKIT), "--dev", "--bind", "127.0.0.1", "--node-ip", "127.0.0.1"]
                + ["--config-body", config],
                ready_url=f"http://127.0.0.1:{port}/",
            )
        )
    engine = [python, "-m", "engines.local"]
    if "stt" in local:
        started.append(
            Child(
                "stt",
                [*engine, "stt", "--port", str(settings.voxtral_port)]
                + ["--model", settings.local_stt_model, "--served-name", settings.voxtral_model],
                ready_port=settings.voxtral_port,
            )
        )
    if "tts" in local:
        started.append(
            Child(
                "tts",
                [*engine, "tts", "--port", str(settings.chatterbox_port)]
                + ["--voice", settings.local_tts_voice],
                ready_port=settings.chatterbox_port,
            )
        )
    if "llm" in local:
        started.append(
            Child(
                "llm",
                [*engine, "llm", "--port", str(settings.local_llm_port)]
                + ["--model", settings.local_llm_model, "--served-name", LOCAL_LLM_NAME],
                ready_port=settings.local_llm_port,
            )
        )
    started.append(
        Child(
            "session-server",
            [python, "-m", "server"],
            ready_url=f"http://127.0.0.1:{settings.token_server_port}/health",
            env=env,
            # It lets live conversations end first (DRAIN_TIMEOUT_S), then stops its bots.
            stop_grace_s=settings.drain_timeout_s + settings.bot_stop_grace_s + STOP_GRACE_S,
        )
    )
    started.append(
        Child(
            "client",
            ["npm", "run", "dev", "--", "--port", str(settings.client_port), "--host", "127.0.0.1"],
            cwd=ROOT / "client",
            ready_url=f"http://127.0.0.1:{settings.client_port}/",
            env={"SESSION_SERVER_URL": f"http://127.0.0.1:{settings.token_server_port}"},
        )
    )
    return started


async def run(settings: Settings, local: list[str], env: dict[str, str]) -> int:
    """Start everything, wait for Ctrl-C (or a child's death), stop everything."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    started: list[Child] = []
    status = 0
    try:
        for child in children(settings, local, env):
            say(f"starting {child.name}")
            await child.start()
            started.append(child)
            waiting = asyncio.create_task(child.wait_ready(timeout_s=180))
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if stop.is_set():
                waiting.cancel()
                return 0
            waiting.result()
        say(f"open http://localhost:{settings.client_port} and click Connect (Ctrl-C stops)")
        say(f"logs: {RUN_DIR}/")
        status = await watch(started, stop)
    except RuntimeError as e:
        say(str(e))
        status = 1
    finally:
        say("stopping")
        for child in reversed(started):
            await child.stop()
        say("stopped")
    return status


async def watch(started: list[Child], stop: asyncio.Event) -> int:
    """Until Ctrl-C (0) or until a child exits on its own (1)."""
    exits = {asyncio.create_task(c.process.wait()): c for c in started if c.process}
    stopping = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({*exits, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    for task in exits:
        task.cancel()
    for task in done:
        if task in exits:
            say(f"{exits[task].name} exited unexpectedly; see {exits[task].log_path}")
            return 1
    return 0


def main() -> int:
    """Decide what runs locally, check ports, run."""
    argparse.ArgumentParser(prog="scripts/run", description=__doc__).parse_args()
    local = local_parts(configured_variables())
    # The local LLM accepts any key; the bot must send one, and this one means nothing.
    llm_key = secrets.token_urlsafe(24)
    fields = Settings.model_fields
    try:
        probe = load_settings(
            **local_overrides(
                local,
                fields["local_livekit_port"].default,
                fields["local_llm_port"].default,
                llm_key,
            )
        )
        overrides = local_overrides(local, probe.local_livekit_port, probe.local_llm_port, llm_key)
        settings = load_settings(**overrides)
    except SettingsError as e:
        say(str(e))
        return 2
    say("local: " + (", ".join(local) or "nothing (every engine is remote)"))
    ports = {
        "livekit": settings.local_livekit_port if "livekit" in local else None,
        "stt": settings.voxtral_port if "stt" in local else None,
        "tts": settings.chatterbox_port if "tts" in local else None,
        "llm": settings.local_llm_port if "llm" in local else None,
        "session server": settings.token_server_port,
        "client": settings.client_port,
    }
    busy = [f"{name} ({port})" for name, port in ports.items() if port and not port_is_free(port)]
    if busy:
        say(f"ports already in use: {', '.join(busy)}; stop what uses them or change them in .env")
        return 2
    env = {name.upper(): env_value(value) for name, value in overrides.items()}
    env.setdefault("LOG_FORMAT", os.environ.get("LOG_FORMAT", "text"))
    return asyncio.run(run(settings, local, env))


if __name__ == "__main__":
    sys.exit(main())
