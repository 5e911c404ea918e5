"""Logging set-up with a last line of defence against leaked secrets.

Code never logs tokens on purpose; this filter masks anything token-shaped that slips
into a message or its arguments anyway (a library's repr, an exception text), and into the
traceback of ``log.exception``, causes (``raise ... from``) included.
"""

from __future__ import annotations

import logging
import re
from typing import TextIO

_SECRET = re.compile(r"(xox[abposr]-|xapp-)[A-Za-z0-9-]+|(Bearer\s+)\S+", re.IGNORECASE)
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Formats tracebacks for the filter; the standard one, so the text is what any handler prints.
_TRACEBACKS = logging.Formatter()


def redact(text: str) -> str:
    return _SECRET.sub(lambda m: (m.group(1) or m.group(2)) + "***", text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        # Formatters print ``exc_text`` when it is set, so the traceback is formatted (and
        # masked) here, once, instead of by the formatter after this filter has run.
        if record.exc_info and not record.exc_text:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def log_handler(stream: TextIO | None = None) -> logging.Handler:
    """The handler ``setup_logging`` installs: one line per record, secrets masked."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.addFilter(RedactingFilter())
    return handler


def setup_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    root.handlers[:] = [log_handler()]
    root.setLevel(level)
    # httpx logs every request URL at INFO; keep that at DEBUG-only noise.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
