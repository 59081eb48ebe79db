"""Structured JSON logs: one object per line, on stdout in Lambda (CloudWatch Logs indexes it),
to a file in the local runtime.

Library modules only ask for loggers (``get``); an entry point (the Lambda handlers, the CLI, the
local runtime given a log file) calls ``configure`` once. Used as a library, elt-sdk adds no
handler: its records propagate to the application's logging (and to pytest's ``caplog``).
Record content (raw lines, values) is logged at DEBUG only: quarantine holds it, logs do not.
"""
from __future__ import annotations

import json
import logging
import sys
import threading
import time
from typing import IO, Any

LOGGER = "elt_sdk"
METRICS = "elt_sdk.metrics"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        raw = getattr(record, "raw_line", None)
        if raw is not None:  # an EMF document: CloudWatch wants it as the whole line
            return raw
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


_lock = threading.Lock()
_handler: logging.Handler | None = None


def configure(stream: IO[str] | None = None, level: int | str = logging.INFO) -> logging.Logger:
    """For entry points: send the SDK's logs at ``level`` and above, as JSON lines, to ``stream``
    (stdout by default), and nowhere else."""
    global _handler
    logger = logging.getLogger(LOGGER)
    with _lock:
        if _handler is not None:
            logger.removeHandler(_handler)
        _handler = logging.StreamHandler(stream or sys.stdout)
        _handler.setFormatter(JsonFormatter())
        _handler.setLevel(level)
        logger.addHandler(_handler)
        logger.setLevel(min(_handler.level, *(h.level for h in logger.handlers)) or logging.DEBUG)
        logger.propagate = False
    return logger


def attach(stream: IO[str], level: int | str = logging.INFO) -> logging.Handler:
    """A second JSON-lines destination (the local runtime's log file), until ``detach``."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(level)
    logger = logging.getLogger(LOGGER)
    with _lock:
        logger.addHandler(handler)
        if logger.level == logging.NOTSET or logger.level > handler.level:
            logger.setLevel(handler.level)
    return handler


def detach(handler: logging.Handler) -> None:
    logging.getLogger(LOGGER).removeHandler(handler)


def write_raw(line: str) -> None:
    """A line that must stand alone in the log stream (an EMF document)."""
    logging.getLogger(METRICS).info("%s", line, extra={"raw_line": line})


def get(name: str) -> logging.Logger:
    return logging.getLogger(f"{LOGGER}.{name}")


def debug(logger: logging.Logger, message: str, **fields: Any) -> None:
    logger.debug(message, extra={"fields": fields})


def info(logger: logging.Logger, message: str, **fields: Any) -> None:
    logger.info(message, extra={"fields": fields})


def warning(logger: logging.Logger, message: str, **fields: Any) -> None:
    logger.warning(message, extra={"fields": fields})


def error(logger: logging.Logger, message: str, exc_info: bool = False, **fields: Any) -> None:
    logger.error(message, exc_info=exc_info, extra={"fields": fields})
