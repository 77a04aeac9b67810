"""A real `livekit-server` for end-to-end tests, bound to 127.0.0.1 on free ports."""

import contextlib
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.waiting import answers

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / ".tools" / "bin" / "livekit-server"
UDP_PORTS = 40


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_udp_range(size: int) -> int:
    """The first port of `size` consecutive free UDP ports."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            start = probe.getsockname()[1]
        if start + size > 65535:
            continue
        with contextlib.ExitStack() as held:
            try:
                for port in range(start, start + size):
                    s = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                    s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return start
    raise RuntimeError("no free UDP port range")


@dataclass
class LiveKitServer:
    """One `livekit-server --dev` process with its own generated config.

    With `redis` (an address), several of them form one multi-node SFU.
    """

    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @classmethod
    async def start(
        cls,
        folder: Path,
        api_key: str,
        api_secret: str,
        *,
        redis: str | None = None,
        name: str = "livekit",
    ) -> "LiveKitServer":
        """Start it and wait until it answers; fails the run with its log if it cannot."""
        if not BINARY.exists():
            raise RuntimeError(f"{BINARY} is missing: run scripts/install-livekit-server")
        port, tcp_port, udp_start = free_tcp_port(), free_tcp_port(), free_udp_range(UDP_PORTS)
        config = folder / f"{name}.yaml"
        extra = f"redis:\n  address: {redis}\n" if redis else ""
        config.write_text(
            f"port: {port}\n"
            "bind_addresses: [127.0.0.1]\n"
            "rtc:\n"
            f"  tcp_port: {tcp_port}\n"
            f"  port_range_start: {udp_start}\n"
            f"  port_range_end: {udp_start + UDP_PORTS - 1}\n"
            "  use_external_ip: false\n"
            "keys:\n"
            f"  {api_key}: {api_secret}\n"
            "logging:\n"
            "  level: info\n" + extra
        )
        log_path = folder / f"{name}.log"
        process = subprocess.Popen(
            [str(BINARY), "--dev", "--config", str(config), "--node-ip", "127.0.0.1"],
            stdout=log_path.open("w"),
            stderr=subprocess.STDOUT,
        )
        server = cls(process=process, port=port, log_path=log_path)
        await server._wait_ready(timeout=30)
        return server

    async def _wait_ready(self, timeout: float) -> None:
        if not await answers(f"http://127.0.0.1:{self.port}/", self.process, timeout):
            self.kill()
            log = self.log_path.read_text()[-3000:]
            raise RuntimeError(f"livekit-server did not start:\n{log}")

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.kill()
