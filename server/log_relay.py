"""Re-log what a child process writes, tagged, through this server's redacting sink."""

import asyncio
import json
from typing import Any

from loguru import logger

MAX_LINE_BYTES = 1 << 20
_RECORD_FIELDS = {"ts", "level", "logger", "function", "message"}
_LEVELS = {"TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"}


class LogRelay:
    """Relays a child's JSON log records (or plain lines) to the server's log, re-tagged."""

    def __init__(self, **context: Any) -> None:
        self.log = logger.bind(**context)

    async def relay(self, stream: asyncio.StreamReader, plain_level: str) -> None:
        """Re-log each line the child writes until the stream ends."""
        while True:
            try:
                line = await stream.readline()
            except ValueError:
                self.log.warning(f"Dropped a log line over {MAX_LINE_BYTES} bytes")
                continue
            if not line:
                return
            self._relay_line(line.decode(errors="replace").rstrip(), plain_level)

    def _relay_line(self, text: str, plain_level: str) -> None:
        if not text:
            return
        try:
            record = json.loads(text)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            # Not a JSON record: an interpreter error or a library's print.
            self.log.log(plain_level, text)
            return
        level = str(record.get("level", "INFO")).upper()
        extras = {k: v for k, v in record.items() if k not in _RECORD_FIELDS}
        extras.pop("room", None)
        self.log.bind(**extras).log(
            level if level in _LEVELS else "INFO", str(record.get("message", ""))
        )
