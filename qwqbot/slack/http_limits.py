"""Time limits for HTTP mode's server, so slow or idle clients cannot hold its sockets.

Without them aiohttp keeps a connection that trickles its headers for an hour (its
``keepalive_timeout`` defaults to 3630 s) and a trickling body for as long as it trickles:
enough such connections exhaust the open-file limit and Slack's own deliveries are refused.
Slack answers a closed connection by opening a new one, so short limits cost it nothing.

- Headers: aiohttp's ``RequestHandler`` arms its keep-alive timer when the connection is
  made and again after every response, and does not re-arm it when bytes arrive; when it
  fires while the handler is still waiting for a complete request line and headers, the
  connection is closed (``connection_made``, ``start`` and ``_process_keepalive`` in
  https://github.com/aio-libs/aiohttp/blob/master/aiohttp/web_protocol.py). So one value,
  ``KEEPALIVE_TIMEOUT``, bounds both an idle keep-alive connection and the time a client has
  to send its next request's headers. The same 5 s is Node.js's default ``keepAliveTimeout``
  (https://nodejs.org/api/http.html#serverkeepalivetimeout).
- Body: aiohttp has no deadline for reading a body, so ``body_deadline`` reads it (aiohttp
  keeps what was read for the handler's own ``request.read()``,
  https://docs.aiohttp.org/en/stable/web_reference.html#aiohttp.web.BaseRequest.read) within
  ``BODY_TIMEOUT`` or answers 408 and closes the connection.

No cap on concurrent connections: with these limits a connection that sends nothing useful
lives at most ``BODY_TIMEOUT + KEEPALIVE_TIMEOUT`` seconds, so holding the limit's worth of
sockets needs a sustained rate of new connections, which a cap would not tell from Slack's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

# Seconds a connection may stay idle, and may take to send a request line and headers, from
# the moment it opens or its last response is sent (aiohttp's keepalive_timeout, see above).
KEEPALIVE_TIMEOUT = 5.0
# Seconds a request may take to send its body once its headers are in. Slack's events are a
# few kB at most; Slack itself gives up on an answer after 3 s
# (https://docs.slack.dev/apis/events-api/#responding).
BODY_TIMEOUT = 10.0
# Seconds aiohttp keeps reading (and discarding) a body the handler left unread before it
# closes the connection (its lingering_time, 10 s by default): after a 408 nothing is left
# worth waiting for.
LINGERING_TIME = 0.0

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def runner_limits() -> dict[str, Any]:
    """Keyword arguments for ``web.AppRunner`` (passed on to each ``RequestHandler``,
    https://docs.aiohttp.org/en/stable/web_reference.html#aiohttp.web.AppRunner)."""
    return {"keepalive_timeout": KEEPALIVE_TIMEOUT, "lingering_time": LINGERING_TIME}


@web.middleware
async def body_deadline(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Read the whole body within ``BODY_TIMEOUT``, or answer 408 and close the connection."""
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            await request.read()
    except TimeoutError:
        log.warning("closed a request to %s from %s: its body took longer than %.0f s",
                    request.path, request.remote or "an unknown address", BODY_TIMEOUT)
        response = web.Response(status=408, text="request body took too long")
        response.force_close()
        return response
    return await handler(request)
