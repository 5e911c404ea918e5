"""Starting while Slack is down: which start-up failures are waited out, and for how long.

Why: a platform with a health check (Heroku's boot timeout, Render, a Kubernetes probe)
restarts a process that is not up in time. A bot that exits because Slack did not answer
``auth.test`` at start is restarted, fails again, and loops for as long as Slack's outage
lasts. So a *transient* failure of a start-up call is retried with capped exponential
backoff with jitter while the bot says "not ready" (``/healthz`` in HTTP mode): no
connection, a timeout, HTTP 5xx or 429, or one of the errors Slack documents as temporary
(``fatal_error``, ``internal_error``, ``request_timeout``, ``service_unavailable``,
``ratelimited``, ``team_added_to_org``: https://docs.slack.dev/reference/methods/auth.test
"Errors"). Any other refusal (``invalid_auth``, ``not_authed``, ``account_inactive``,
``token_revoked`` ...) is about the token itself: no retry can help, so it ends the start at
once and the operator reads why.

The delay after the n-th failure is drawn between half and all of ``min(cap, base * 2**(n-1))``
("equal jitter", https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/):
instances restarted together spread out, and no retry follows its failure immediately. A 429's
``Retry-After`` (https://docs.slack.dev/apis/web-api/rate-limits#headers) is a floor.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from qwqbot.slack.calls import retry_after

log = logging.getLogger(__name__)
T = TypeVar("T")

#: ``ok: false`` errors that say Slack had a problem, not the request.
TRANSIENT_ERRORS = frozenset({"fatal_error", "internal_error", "request_timeout",
                              "service_unavailable", "ratelimited", "team_added_to_org"})


def backoff_delay(attempt: int, *, base: float, cap: float, jitter: float) -> float:
    """Seconds to wait after the ``attempt``-th failure (1 for the first). Pure: ``jitter``
    in [0, 1] picks the point between half the ceiling (0) and the whole ceiling (1)."""
    ceiling = min(cap, base * 2.0 ** min(max(attempt, 1) - 1, 64))
    return ceiling / 2 + ceiling / 2 * min(max(jitter, 0.0), 1.0)


@dataclass(frozen=True)
class Backoff:
    """How long start-up waits between tries; tests pass small figures and their own ``sleep``."""

    base: float = 1.0
    cap: float = 60.0
    jitter: Callable[[], float] = random.random
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def delay(self, attempt: int, *, at_least: float = 0.0) -> float:
        return max(at_least, backoff_delay(attempt, base=self.base, cap=self.cap,
                                           jitter=self.jitter()))


@dataclass(frozen=True)
class Transient:
    """A failure worth waiting out: what to log (never a token) and Slack's Retry-After."""

    reason: str
    retry_after: float = 0.0


def error_of(exc: SlackApiError) -> str:
    """Slack's error code (``invalid_auth`` ...), or "" when the answer had none. The response
    is usually a SlackResponse; it is aiohttp's own when the body was not JSON (a proxy's
    error page: slack_sdk/web/async_internal_utils.py), which has no ``data``."""
    data = getattr(exc.response, "data", None)
    return str(data.get("error") or "") if isinstance(data, dict) else ""


def transient(exc: BaseException) -> Transient | None:
    """The failure as a Transient, or None when trying again cannot help."""
    if isinstance(exc, SlackApiError):
        response = exc.response  # aiohttp's has ``status``, a SlackResponse ``status_code``
        status = int(getattr(response, "status_code", None) or getattr(response, "status", 0) or 0)
        error = error_of(exc)
        if status == 429 or status >= 500 or error in TRANSIENT_ERRORS:
            reason = " ".join(filter(None, (f"HTTP {status}", error)))
            return Transient(reason, retry_after(exc) if status == 429 else 0.0)
        return None
    if isinstance(exc, (aiohttp.ClientError, OSError)):  # OSError: timeouts too
        return Transient(f"Slack unreachable ({type(exc).__name__})")
    return None


def startup_client(client: AsyncWebClient) -> AsyncWebClient:
    """``client`` without the SDK's own retry handlers, for the calls made at start: their
    waits would run on the SDK's schedule, between and on top of this module's."""
    return AsyncWebClient(token=client.token, base_url=client.base_url, timeout=10,
                          session=client.session, logger=client.logger, retry_handlers=[])


async def retrying(call: Callable[[], Awaitable[T]], *, what: str, backoff: Backoff,
                   waiting: Callable[[str], None]) -> T:
    """``await call()`` until it succeeds or fails for good (that exception is raised).
    Each transient failure logs one WARNING with the attempt count and the next delay, and
    tells ``waiting`` why the bot is not ready yet."""
    attempt = 0
    while True:
        try:
            return await call()
        except Exception as exc:
            failure = transient(exc)
            if failure is None:
                raise
            attempt += 1
            delay = backoff.delay(attempt, at_least=failure.retry_after)
            waiting(f"waiting for Slack {what}: {failure.reason}")
            log.warning("Slack %s failed (%s), attempt %d; retrying in %.1f s", what,
                        failure.reason, attempt, delay)
            await backoff.sleep(delay)
