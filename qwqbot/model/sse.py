"""A bounded reader of ``text/event-stream`` bodies: the ``data`` of each event.

httpx-sse buffers a line, and an event's data lines, for as long as the server keeps
sending without a newline, so one endless line would fill memory. This reader counts bytes
as they arrive and raises ``LimitExceeded`` past the body, event or event-count ceiling.
Only ``data`` fields matter to chat completions; parsing follows the event-stream
interpretation rules of https://html.spec.whatwg.org/multipage/server-sent-events.html
(lines end in CRLF, LF or CR; a blank line dispatches; ``:`` starts a comment).
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator

import httpx

from qwqbot.model.limits import LimitExceeded, ResponseLimits

_EOL = re.compile(rb"\r\n|\r|\n")


async def aiter_data(response: httpx.Response, limits: ResponseLimits) -> AsyncGenerator[str, None]:
    """Yield the ``data`` of each event in ``response``'s body, within ``limits``."""
    buf = bytearray()
    data: list[str] = []
    total = event_bytes = events = 0
    async for chunk in response.aiter_bytes():
        total += len(chunk)
        if total > limits.stream_bytes:
            raise LimitExceeded("stream bytes")
        buf += chunk
        start = 0
        while (m := _EOL.search(buf, start)) is not None:
            if m.group() == b"\r" and m.end() == len(buf):
                break  # maybe the first half of a CRLF split across chunks
            line = buf[start:m.start()].decode("utf-8", "replace")
            event_bytes += m.end() - start
            start = m.end()
            if line:
                _field(line, data)
                continue
            event_bytes = 0
            if data:
                events += 1
                if events > limits.events:
                    raise LimitExceeded("stream events")
                yield "\n".join(data)
                data = []
        del buf[:start]
        if event_bytes + len(buf) > limits.event_bytes:
            raise LimitExceeded("event bytes")
    # An event the body ended in before its blank line is discarded, as the rules say.


def _field(line: str, data: list[str]) -> None:
    if line.startswith(":"):
        return
    name, _, value = line.partition(":")
    if name == "data":
        data.append(value[1:] if value.startswith(" ") else value)
