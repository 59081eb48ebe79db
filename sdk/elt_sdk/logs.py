"""Structured JSON logs: one object per line, on stdout in Lambda (CloudWatch Logs indexes it),
to a file in the local runtime."""
from __future__ import annotations

import json
import logging
import sys
import threading
import time
from typing import IO, Any

LOGGER = "elt_sdk"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload.update(getattr(record, "fields", {}))
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


_configured = False
_lock = threading.Lock()


def configure(stream: IO[str] | None = None, level: int = logging.INFO) -> logging.Logger:
    """Send the SDK's logs, as JSON lines, to ``stream`` (stdout by default)."""
    global _configured
    _configured = True
    logger = logging.getLogger(LOGGER)
    for h in list(logger.handlers):
        logger.removeHandler(h)
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger


def _handler() -> logging.StreamHandler:
    if not _configured:
        configure()
    return logging.getLogger(LOGGER).handlers[0]


def write_raw(line: str) -> None:
    """Write a line that must stand alone in the log stream (an EMF document)."""
    handler = _handler()
    with _lock:
        handler.stream.write(line + "\n")
        handler.flush()


def get(name: str) -> logging.Logger:
    if not _configured:
        configure()
    return logging.getLogger(f"{LOGGER}.{name}")


def info(logger: logging.Logger, message: str, **fields: Any) -> None:
    logger.info(message, extra={"fields": fields})


def warning(logger: logging.Logger, message: str, **fields: Any) -> None:
    logger.warning(message, extra={"fields": fields})


def error(logger: logging.Logger, message: str, exc_info: bool = False, **fields: Any) -> None:
    logger.error(message, exc_info=exc_info, extra={"fields": fields})
