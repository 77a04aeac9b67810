"""A real Jaeger v2 all-in-one for end-to-end tests: OTLP in, query API out, in memory.

Every listener is on 127.0.0.1 on a free port; its own metrics and traces are off, so
it binds and dials nothing else.
"""

import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tests.livekit_server import ROOT, free_tcp_port
from tests.waiting import answers

BINARY = ROOT / ".tools" / "bin" / "jaeger"


def _config(otlp_http: int, otlp_grpc: int, query_http: int, query_grpc: int) -> str:
    return f"""\
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: info
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
  jaeger_query:
    enable_tracing: false
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:{query_http}
    grpc:
      endpoint: 127.0.0.1:{query_grpc}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{otlp_grpc}
      http:
        endpoint: 127.0.0.1:{otlp_http}
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
"""


@dataclass
class Jaeger:
    """One `jaeger --config FILE` process."""

    process: subprocess.Popen
    otlp_http_port: int
    query_port: int
    log_path: Path

    @property
    def otlp_endpoint(self) -> str:
        """What `OTEL_EXPORTER_OTLP_ENDPOINT` is set to."""
        return f"http://127.0.0.1:{self.otlp_http_port}"

    @property
    def query_url(self) -> str:
        return f"http://127.0.0.1:{self.query_port}"

    @classmethod
    async def start(cls, folder: Path) -> "Jaeger":
        """Start it and wait until its query API answers; fails with its log if it cannot."""
        if not BINARY.exists():
            raise RuntimeError(f"{BINARY} is missing: run scripts/install-jaeger")
        ports = [free_tcp_port() for _ in range(4)]
        config = folder / "jaeger.yaml"
        config.write_text(_config(*ports))
        log_path = folder / "jaeger.log"
        process = subprocess.Popen(
            [str(BINARY), "--config", str(config)],
            stdout=log_path.open("w"),
            stderr=subprocess.STDOUT,
        )
        jaeger = cls(process, otlp_http_port=ports[0], query_port=ports[2], log_path=log_path)
        if not await answers(f"{jaeger.query_url}/api/services", process, timeout=30):
            jaeger.stop()
            raise RuntimeError(f"jaeger did not start:\n{log_path.read_text()[-3000:]}")
        return jaeger

    async def traces(self, service: str) -> list[dict[str, Any]]:
        """Every trace with a span of `service`, in Jaeger's JSON form."""
        async with aiohttp.ClientSession() as http:
            async with http.get(
                f"{self.query_url}/api/traces",
                params={"service": service, "limit": "100", "lookback": "1h"},
            ) as response:
                response.raise_for_status()
                return (await response.json())["data"] or []

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
