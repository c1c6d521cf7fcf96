"""Structured logs: one JSON object per line, never a phone number, identity id, nickname or key.

Each request's line carries its request id, route template (never the URL with its query string), status,
duration and the API key's name; the service name is bound per request and per background task.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

_configured_file: TextIO | None = None


def configure_logging(level: str = "info", fmt: str = "json", file: str | None = None) -> None:
    global _configured_file
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
    )
    if file is not None:
        if _configured_file is None or _configured_file.name != file:
            _configured_file = open(file, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 -- process lifetime
        stream: TextIO = _configured_file
    else:
        stream = sys.stderr
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            # Tracebacks without local variables: locals can hold request bodies with personal data.
            structlog.processors.ExceptionRenderer(structlog.tracebacks.ExceptionDictTransformer(show_locals=False))
            if fmt == "json"
            else structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=logging.WARNING, stream=stream, format="%(message)s")


def bind_service(service: str) -> None:
    """Name the service in every line logged from this task (and the tasks it starts)."""
    structlog.contextvars.bind_contextvars(service=service)
