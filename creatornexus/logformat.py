"""Log line formats: one JSON object per line (production) or a plain line (local use), LOG_FORMAT picks.

Both write the same fields: time, level, logger, message, the process, and the connection, session and user the
line is about (creatornexus.logcontext). They run after the handler's filters, so what they write is already
redacted (creatornexus.redact) and stamped.

Our own formatter rather than python-json-logger: that one writes every attribute a record carries, and Django's
`django.request` records carry the request object, whose text is its path with the query string (a ?token=
would be written past the redaction filter, which rewrites messages, not attributes). This one writes a fixed
set of fields, with orjson, which the project already uses.
"""

from __future__ import annotations

import logging
import logging.config
from datetime import UTC, datetime
from typing import Any

import orjson

from creatornexus import logcontext


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The ids a line is about, those it has."""
    fields: dict[str, Any] = {}
    if (process := logcontext.process_id()) is not None:
        fields["process_id"] = process
    for name in logcontext.FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            fields[name] = value
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line: newlines in a message or traceback are escaped inside its strings."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc_info"] = record.exc_text
        if record.stack_info:
            line["stack_info"] = record.stack_info
        return orjson.dumps(line, default=str).decode()


class PlainFormatter(logging.Formatter):
    """`time LEVEL logger message [connection=… session=… user=…]`, for a person reading a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        ids = [f"{name.removesuffix('_id')}={value}" for name, value in _fields(record).items() if name != "process_id"]
        return f"{text} [{' '.join(ids)}]" if ids else text


def configure(config: dict[str, Any]) -> None:
    """settings.LOGGING_CONFIG: Django's dictConfig, and Python's warnings through logging too (a warning printed
    to stderr as it is would break one-JSON-object-per-line)."""
    logging.config.dictConfig(config)
    logging.captureWarnings(True)
