"""Logging set-up with a last line of defence against leaked secrets.

Code never logs tokens on purpose; this filter masks anything token-shaped that slips
into a message or its arguments anyway (a library's repr, an exception text).
"""

from __future__ import annotations

import logging
import re

_SECRET = re.compile(r"(xox[abposr]-|xapp-)[A-Za-z0-9-]+|(Bearer\s+)\S+", re.IGNORECASE)


def redact(text: str) -> str:
    return _SECRET.sub(lambda m: (m.group(1) or m.group(2)) + "***", text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL at INFO; keep that at DEBUG-only noise.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
