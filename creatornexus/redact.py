"""Tokens out of logs: a logging filter that redacts `token=<value>` and anything shaped like a JWT."""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[redacted]"
# token=, access_token=, refresh_token= … up to the end of the parameter (servers log paths with their query).
TOKEN_PARAM = re.compile(r"(\b\w*token=)[^&\s\"'<>\]\[)(,;]+", re.IGNORECASE)
# header.payload.signature in base64url, header first ({"…" encodes to eyJ): a token by any other carrier.
JWT = re.compile(r"\beyJ[\w-]*\.[\w-]+\.[\w-]+")


def redact(text: str) -> str:
    """The text with every token replaced by [redacted]."""
    if "token=" not in text.lower() and "eyJ" not in text:
        return text  # the common case: one cheap scan
    return JWT.sub(REDACTED, TOKEN_PARAM.sub(rf"\1{REDACTED}", text))


class RedactTokens(logging.Filter):
    """Rewrites a record whose message (or traceback) holds a token; other records pass untouched.

    On a handler it sees every record written there, whichever logger made it (uvicorn's, Daphne's, ours).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: the handler reports it, with its arguments redacted
            record.msg, record.args = redact(str(record.msg)), tuple(redact(str(arg)) for arg in record.args or ())
            return True
        if (clean := redact(message)) != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


access_logger = logging.getLogger("daphne.access")


def _log_access_entry(self: Any, **entry: Any) -> None:
    """Daphne's access-log line (its NCSA format, less the date the formatter adds), through logging."""
    status, length = entry.get("status") or "-", entry.get("length") or "-"
    access_logger.info('%s - - "%s" %s %s', entry["host"], entry["request"], status, length)


def route_daphne_access_log() -> None:
    """Daphne writes its access log (full URLs, query included) straight to stdout, past logging and this filter.

    Its CLI builds the access logger after importing the app, so patching the class here (asgi.py) reroutes
    every line through logging: redacted like the rest, and LOG_LEVEL=WARNING silences it.
    """
    from daphne.access import AccessLogGenerator

    AccessLogGenerator.write_entry = _log_access_entry
