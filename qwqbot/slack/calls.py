"""Web API calls that do not give up: within Slack's limits, retried until they land.

Every call first takes room from the local model of its rate limit (``limits.py``), so
the bot rarely meets a 429 at all. When Slack still refuses:

- **429**: the limit is paused for ``Retry-After`` (which Slack sends with every 429,
  https://docs.slack.dev/apis/web-api/rate-limits#headers) and the call waits its turn
  again, for as long as it takes;
- **5xx, connection errors, timeouts**: retried with exponential backoff and full jitter
  (1 s doubling to 30 s) — a Slack outage of a few seconds or minutes delays an answer
  instead of losing it;
- **anything else** (``not_in_channel``, ``msg_too_long``, ...) is the caller's to handle.

Only after ``give_up_after`` seconds of trying does a call raise ``Undeliverable``; the
answer stays stored and the caller tells the asker some other way. The SDK's own 429
retries are off for this client (``app.make_raw_client``): they would wait outside the
budget and stop after a fixed number of tries.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from qwqbot.slack.limits import Limits, Priority

log = logging.getLogger(__name__)
GIVE_UP_AFTER = 30 * 60.0
MAX_BACKOFF = 30.0


class Undeliverable(Exception):
    """Slack could not be reached, or kept refusing, for longer than we keep trying."""

    def __init__(self, method: str, error: str) -> None:
        super().__init__(f"{method}: {error}")
        self.method = method
        self.error = error


def slack_error(exc: SlackApiError) -> str:
    return str(exc.response.get("error") or "unknown_error")


def retry_after(exc: SlackApiError) -> float:
    headers = exc.response.headers or {}
    raw = headers.get("Retry-After") or headers.get("retry-after") or 1
    if isinstance(raw, list):  # slack_sdk keeps some headers as lists
        raw = raw[0]
    try:
        return max(1.0, float(raw))
    except (TypeError, ValueError):
        return 1.0


class Calls:
    def __init__(self, client: AsyncWebClient, limits: Limits, *,
                 give_up_after: float = GIVE_UP_AFTER,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.limits = limits
        self.give_up_after = give_up_after
        self._clock = clock
        #: 429s Slack sent us anyway, by method (for logs and benchmarks)
        self.refusals: dict[str, int] = {}

    async def call(self, method: str, *, channel: str | None = None,
                   priority: Priority = Priority.ANSWER,
                   give_up_after: float | None = None, only_if_room: bool = False,
                   **kwargs: Any) -> AsyncSlackResponse:
        """``client.<method>(**kwargs)``, e.g. ``call("chat.postMessage", channel=...)``;
        ``channel`` is passed on as the method's ``channel`` argument too, except for the
        assistant methods, which name it ``channel_id``.

        ``only_if_room``: for what is worth sending only now (a progress step): raise
        Undeliverable at once instead of waiting when the limit has no room."""
        if only_if_room and not self.limits.ready(method, channel):
            raise Undeliverable(method, "busy")
        fn: Callable[..., Awaitable[AsyncSlackResponse]] = getattr(
            self.client, method.replace(".", "_"))
        if channel is not None:
            kwargs["channel_id" if method.startswith("assistant.") else "channel"] = channel
        deadline = self._clock() + (self.give_up_after if give_up_after is None
                                    else give_up_after)
        backoff = 1.0
        while True:
            try:
                await self.limits.acquire(method, channel, priority,
                                          timeout=max(0.0, deadline - self._clock()))
            except TimeoutError:
                raise Undeliverable(method, "no room within Slack's rate limit") from None
            try:
                return await fn(**kwargs)
            except SlackApiError as exc:
                status = exc.response.status_code
                if status == 429:
                    wait = retry_after(exc)
                    self.refusals[method] = self.refusals.get(method, 0) + 1
                    self.limits.refused(method, channel, wait)
                    log.info("%s refused with 429 in %s; waiting %.0f s", method, channel, wait)
                    if self._clock() + wait > deadline:
                        raise Undeliverable(method, "ratelimited") from exc
                    continue
                if status < 500:
                    raise
                error = f"HTTP {status}"
            except (SlackClientError, aiohttp.ClientError, TimeoutError, OSError) as exc:
                error = type(exc).__name__
            # 5xx or no answer: back off with full jitter (a thundering herd of retries
            # right after an outage would only prolong it).
            if self._clock() + backoff > deadline:
                raise Undeliverable(method, error)
            log.warning("%s failed in %s (%s); retrying within %.0f s", method, channel, error,
                        backoff)
            await asyncio.sleep(random.uniform(0, backoff))
            backoff = min(MAX_BACKOFF, backoff * 2)
