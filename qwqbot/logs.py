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


# Libraries whose INFO lines are their own bookkeeping, not news for an operator: httpx logs
# every request URL; APScheduler 3 every job it adds ("Adding job tentatively -- it will be
# properly scheduled when the scheduler starts", "Added job ...") and every run of one (the
# digest heartbeat, every 30 s); Bolt's Socket Mode client each session it opens and drops.
# Their warnings and errors still show; at DEBUG, everything does.
QUIET_AT_INFO = ("httpx", "apscheduler", "slack_bolt")


class QuietLibraries(logging.Filter):
    """Drops the INFO (and lower) records of ``QUIET_AT_INFO``. A handler filter, because a
    logger's level is not enough: Bolt sets each of its loggers to the root's level when it
    creates them (``_configure_from_root`` in slack_bolt/logger/__init__.py)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        return not any(record.name == n or record.name.startswith(n + ".") for n in QUIET_AT_INFO)


def setup_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    handler = log_handler()
    root.handlers[:] = [handler]
    root.setLevel(level)
    if root.level > logging.DEBUG:
        handler.addFilter(QuietLibraries())
        for name in QUIET_AT_INFO:  # spares formatting what would be dropped anyway
            logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
