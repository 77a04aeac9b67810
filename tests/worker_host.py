"""Real worker hosts (`python -m bot worker`) for the dispatch tests, each in its own group."""

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tests.livekit_server import free_tcp_port
from tests.processes import process_env
from tests.session_server import scrape
from tests.waiting import answers, until

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class WorkerHost:
    """`python -m bot worker`, started in a new session so its whole group can be killed."""

    process: subprocess.Popen
    health_port: int
    metrics_port: int
    log_path: Path

    @classmethod
    async def start(cls, folder: Path, settings: dict[str, object], name: str) -> "WorkerHost":
        """Start it and wait until it has registered and loaded its idle job processes."""
        port, metrics_port = free_tcp_port(), free_tcp_port()
        env = process_env(
            {
                **settings,
                "worker_health_port": port,
                "worker_metrics_port": metrics_port,
                "log_format": "json",
            }
        )
        log_path = folder / f"{name}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "worker"],
            env=env,
            cwd=ROOT,
            stdout=log_path.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        host = cls(process=process, health_port=port, metrics_port=metrics_port, log_path=log_path)
        if not await answers(f"http://127.0.0.1:{port}/", process, timeout=60):
            host.kill_group()
            raise RuntimeError(f"worker host did not start:\n{log_path.read_text()[-3000:]}")
        idle = int(str(settings.get("worker_idle_processes", 2)))
        await until(lambda: host.ready(idle), 90, f"{name} to register with {idle} idle processes")
        return host

    def ready(self, idle: int) -> bool:
        """Registered with the SFU, `idle` job processes (or threads) loaded, as logged."""
        messages = [r.get("message") for r in self.records()]
        loaded = sum(m in ("process initialized", "job runner initialized") for m in messages)
        return "registered worker" in messages and loaded >= idle

    @property
    def pid(self) -> int:
        return self.process.pid

    def group_pids(self) -> list[int]:
        """Every live process in the host's process group (the host, its job processes)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # fields[0] is the state, fields[2] the process group; zombies are not alive.
            if int(fields[2]) == self.pid and fields[0] != "Z":
                found.append(int(entry.name))
        return found

    async def info(self) -> dict[str, Any]:
        """The `/worker` document: agent name, active jobs, load."""
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{self.health_port}/worker") as response:
                return json.loads(await response.text())

    async def metric(self, name: str, **labels: str) -> float:
        """One sample of its bots' summed metrics; 0 if absent."""
        return await scrape(f"http://127.0.0.1:{self.metrics_port}/metrics", name, **labels)

    def records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def kill_group(self) -> None:
        """SIGKILL the whole group, as a machine or container dying would, and reap the host."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()

    def terminate(self) -> None:
        """SIGTERM the host alone (it drains)."""
        self.process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL the group if it lingers."""
        if self.process.poll() is None:
            self.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        self.kill_group()
