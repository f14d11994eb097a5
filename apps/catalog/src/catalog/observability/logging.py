"""JSON lines on stdout; every line carries the current request_id and trace_id."""

from __future__ import annotations

import contextvars
import json
import logging
import logging.config
import os
import re
import sys
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# A client's X-Request-ID is reused only when it is a short token of safe characters.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def choose_request_id(header_value: str | None) -> str:
    if header_value and _SANE_REQUEST_ID.fullmatch(header_value):
        return header_value
    return os.urandom(16).hex()  # uuid4().hex's shape without building a UUID object


def current_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id_var.get(),
            "trace_id": current_trace_id(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def logging_config(level: str) -> dict[str, Any]:
    """dictConfig for our loggers and Sanic's, all as JSON on stdout."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": sys.stdout}
    loggers = ("catalog", "sanic.root", "sanic.error", "sanic.server", "tortoise")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stdout": handler},
        "loggers": {
            **{name: {"level": level, "handlers": ["stdout"], "propagate": False} for name in loggers},
            # Tortoise logs every statement at DEBUG; spans cover that.
            "tortoise": {"level": "WARNING", "handlers": ["stdout"], "propagate": False},
            # We write our own access line with route, subject and ids.
            "sanic.access": {"level": "WARNING", "handlers": ["stdout"], "propagate": False},
        },
    }


def configure_logging(level: str) -> None:
    logging.config.dictConfig(logging_config(level))
