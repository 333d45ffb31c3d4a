"""Logging for every ``soccerkd`` command: one level, text or JSON lines, quiet Kafka client.

kafka-python logs connection and metadata chatter at INFO (51 of ~60 lines of a normal ``serve``
run, and a line per metadata refresh while a topic is missing), so its loggers stay at WARNING
unless the level asked for is DEBUG. Its network layer (``kafka.net``) logs every refused
connection at ERROR, several a second while a broker is down; the service and the commands say
that once, in their own words, so that layer is shown only at DEBUG. Every line, text or JSON,
shows URLs without their credentials (``rtsp://***@host``).
"""

from __future__ import annotations

import json
import logging
import sys
import time

from stream.errors import redact_url

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
QUIET_LOGGERS = {"kafka": logging.WARNING, "kafka.net": logging.CRITICAL}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts (UTC, ISO 8601), level, logger, process, message[, exc]."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
               "level": record.levelname.lower(), "logger": record.name, "process": record.processName,
               "message": record.getMessage()}
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


class RedactingFormatter(logging.Formatter):
    """Any formatter's lines with the credentials of every URL in them (a camera's
    ``rtsp://user:password@``, in a message or a traceback) replaced by ``***``."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return redact_url(self.inner.format(record))


def configure(level: str = "info", fmt: str = "text") -> None:
    """Set the root logger (stderr) to ``level`` in ``fmt``; idempotent, also in spawned workers."""
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, got {level!r}")
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name, quiet_level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(logging.DEBUG if level == "debug" else quiet_level)


def current() -> tuple[str, str]:
    """(level, format) of the root logger as :func:`configure` set it, for spawned workers."""
    root = logging.getLogger()
    level = logging.getLevelName(root.level).lower()
    fmt = "json" if any(isinstance(getattr(h.formatter, "inner", h.formatter), JsonFormatter)
                        for h in root.handlers) else "text"
    return (level if level in LEVELS else "info"), fmt
