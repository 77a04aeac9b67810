"""Logging for every process of the project: loguru, one JSON object per line.

Redaction happens in the sink, so it covers our records, Pipecat's, and whatever the
standard library loggers of httpx, openai or websockets emit (they are routed into
loguru here). Configured secret values, `Authorization` header values and bearer tokens
become `[REDACTED]` wherever they appear: message, extras or exception text. Unless
transcript logging is switched on, what the user said and what the bot answered is
withheld too, including the text Pipecat itself logs at debug level.
"""

import json
import logging
import sys
import traceback
from collections.abc import Iterable
from datetime import UTC
from typing import Any, TextIO

from loguru import logger

from processors.redaction import Redactor


class RedactingSink:
    """A loguru sink that renders each record as one redacted line."""

    def __init__(self, stream: TextIO, redactor: Redactor, *, json_format: bool) -> None:
        self._stream = stream
        self._redactor = redactor
        self._json = json_format

    def write(self, message: Any) -> None:
        """Render, redact and write one record."""
        record = message.record
        text = self._redactor.clean(record["message"])
        exception = ""
        if record["exception"] is not None:
            exc_type, exc_value, exc_tb = record["exception"]
            exception = "".join(traceback.format_exception(exc_type, exc_value, exc_tb))
            exception = self._redactor.clean(exception)
        extra = {key: self._clean_value(value) for key, value in record["extra"].items()}
        if self._json:
            line = json.dumps(
                {
                    "ts": record["time"].astimezone(UTC).isoformat(timespec="milliseconds"),
                    "level": record["level"].name,
                    "logger": record["name"],
                    "function": record["function"],
                    "message": text,
                    **extra,
                    **({"exception": exception} if exception else {}),
                },
                ensure_ascii=False,
            )
        else:
            context = " ".join(f"{k}={v}" for k, v in extra.items())
            stamp = record["time"].strftime("%H:%M:%S.%f")[:-3]
            line = f"{stamp} {record['level'].name:<7} {record['name']}: {text} {context}"
            line = line.rstrip() + (f"\n{exception.rstrip()}" if exception else "")
        # Serialization may have re-encoded a secret; the escaped form is caught here.
        self._stream.write(self._redactor.remove_secrets(line) + "\n")
        self._stream.flush()

    def _clean_value(self, value: Any) -> Any:
        """Numbers stay numbers (metrics); anything else is cleaned as text."""
        if value is None or isinstance(value, bool | int | float):
            return value
        return self._redactor.clean(value if isinstance(value, str) else str(value))


class _InterceptHandler(logging.Handler):
    """Route standard library log records into loguru, and so through the sink."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


def setup_logging(
    *,
    level: str,
    json_format: bool,
    secrets: Iterable[str],
    log_transcripts: bool,
    stream: TextIO | None = None,
    **context: str,
) -> Redactor:
    """Install the redacting sink as the only log destination of this process.

    Args:
        level: Minimum level written.
        json_format: One JSON object per line (production) or readable text.
        secrets: Values that must never appear in a log line.
        log_transcripts: Whether conversation text may be logged.
        stream: Where lines go; standard error by default.
        **context: Fields added to every record, such as the room.

    Returns:
        The redactor, so the pipeline can register conversation text with it.
    """
    redactor = Redactor(secrets, log_transcripts=log_transcripts)
    sink = RedactingSink(stream or sys.stderr, redactor, json_format=json_format)
    logger.remove()
    logger.configure(extra=context)
    # diagnose=False: loguru would otherwise print local variable values in tracebacks.
    logger.add(sink.write, level=level, format="{message}", backtrace=False, diagnose=False)
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.INFO, force=True)
    return redactor
