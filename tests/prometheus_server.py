"""A real Prometheus (Debian's, installed by scripts/install --test) scraping one target."""

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from tests.livekit_server import free_tcp_port
from tests.waiting import answers

SCRAPE_INTERVAL_S = 1


@dataclass
class PrometheusServer:
    """`prometheus` on a free loopback port, scraping `target` every second with a bearer."""

    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    async def start(cls, folder: Path, target: str, bearer: str) -> "PrometheusServer":
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("prometheus is missing: run scripts/install --test")
        port = free_tcp_port()
        config = folder / "prometheus.yml"
        config.write_text(
            "global:\n"
            f"  scrape_interval: {SCRAPE_INTERVAL_S}s\n"
            f"  scrape_timeout: {SCRAPE_INTERVAL_S}s\n"
            "scrape_configs:\n"
            "  - job_name: voice-agent\n"
            "    authorization:\n"
            f"      credentials: {bearer}\n"
            "    static_configs:\n"
            f"      - targets: ['{target}']\n"
        )
        log_path = folder / "prometheus.log"
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={folder / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log_path.open("w"),
            stderr=subprocess.STDOUT,
        )
        server = cls(process=process, port=port, log_path=log_path)
        if not await answers(f"{server.url}/-/ready", process, timeout=30):
            server.stop()
            raise RuntimeError(f"prometheus did not start:\n{log_path.read_text()[-3000:]}")
        return server

    async def query(self, expression: str) -> float | None:
        """The value of an instant query that yields one number; None when it yields nothing."""
        result = await self._get("/api/v1/query", {"query": expression})
        return float(result[0]["value"][1]) if result else None

    async def series(self, match: str) -> list[dict[str, str]]:
        """The label sets of every series matching a selector."""
        return await self._get("/api/v1/series", {"match[]": match})

    async def _get(self, path: str, params: dict[str, str]) -> list:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{self.url}{path}", params=params) as response:
                body = await response.json()
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus refused {params}: {body}")
        return body["data"]["result"] if path.endswith("query") else body["data"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
