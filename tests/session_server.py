"""The real session server (`python -m server`) as a child process, for end-to-end tests."""

import json
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.livekit_server import free_tcp_port
from tests.processes import process_env
from tests.waiting import answers


async def scrape(url: str, name: str, **labels: str) -> float:
    """One sample of a Prometheus text endpoint; 0 if absent."""
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as response:
            text = await response.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


@dataclass
class SessionServer:
    """`python -m server` with settings given as variables; its log (and its bots') in a file."""

    process: subprocess.Popen
    port: int
    log_path: Path
    admin_token: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    async def start(
        cls, folder: Path, settings: dict[str, object], admin_token: str, name: str = "server"
    ) -> "SessionServer":
        port = free_tcp_port()
        env = process_env(
            {
                **settings,
                "token_server_port": port,
                "admin_token": admin_token,
                "log_format": "json",
            }
        )
        log_path = folder / f"{name}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "server"],
            env=env,
            cwd=Path(__file__).resolve().parent.parent,
            stdout=log_path.open("w"),
            stderr=subprocess.STDOUT,
        )
        server = cls(process=process, port=port, log_path=log_path, admin_token=admin_token)
        await server._wait_ready(timeout=30)
        return server

    async def _wait_ready(self, timeout: float) -> None:
        if not await answers(f"{self.url}/health", self.process, timeout):
            self.stop()
            log = self.log_path.read_text()[-3000:]
            raise RuntimeError(f"session server did not start:\n{log}")

    async def post(self, path: str, body: dict | None = None) -> tuple[int, dict[str, Any]]:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{self.url}{path}", json=body or {}) as response:
                return response.status, await response.json()

    async def end_all(self) -> None:
        """End every session (`DELETE /sessions/{room}`)."""
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        async with aiohttp.ClientSession() as http:
            for session in await self.sessions():
                async with http.delete(
                    f"{self.url}/sessions/{session['room']}", headers=headers
                ) as response:
                    assert response.status in {204, 404}, response.status

    async def sessions(self) -> list[dict[str, Any]]:
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{self.url}/sessions", headers=headers) as response:
                return await response.json()

    async def metric(self, name: str, **labels: str) -> float:
        """One sample of `/metrics`, read from loopback as a local Prometheus would; 0 if absent."""
        return await scrape(f"{self.url}/metrics", name, **labels)

    def log_text(self) -> str:
        return self.log_path.read_text()

    def records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
